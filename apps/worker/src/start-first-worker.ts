import { Job, RedisClient, Worker } from 'bullmq';

/**
 * A BullMQ Worker that starts a job before it fetches the next one.
 *
 * BullMQ's main loop, with a concurrency above 1, fills its free slots first: after
 * moveToActive hands it a job it calls moveToActive again, and starts the fetched job only once
 * that call has answered "no job" or every slot is taken. A burst of N jobs into an idle worker
 * is fetched one round trip at a time, all N, before the first one starts; a lone job waits for
 * one extra round trip. Here the call right after a successful fetch answers "no job" without
 * going to Redis, so BullMQ's loop starts the fetched job at once and fetches again on its next
 * turn, while the job runs (bench/overhead/burst.js: median start of a 64-job burst 30 -> 25 ms).
 * `moveToActive` is the extension point BullMQ declares for this (protected); nothing else of
 * the loop changes.
 */
// Worker's own type parameters and defaults, so that the class stands wherever Worker does.
export class StartFirstWorker<D = any, R = any, N extends string = string> extends Worker<D, R, N> {
  /** A job moveToActive just handed out has not started yet. */
  private fetchedNotStarted = false;

  protected override async moveToActive(client: RedisClient, token: string, name?: string): Promise<Job<D, R, N>> {
    if (this.fetchedNotStarted) {
      this.fetchedNotStarted = false;
      // BullMQ's own "queue empty" answer: the loop then starts what it fetched.
      return undefined as unknown as Job<D, R, N>;
    }
    const job = await super.moveToActive(client, token, name);
    this.fetchedNotStarted = Boolean(job);
    return job;
  }

  override processJob(job: Job<D, R, N>, token: string, fetchNextCallback?: () => boolean): Promise<void | Job<D, R, N>> {
    this.fetchedNotStarted = false;
    return super.processJob(job, token, fetchNextCallback);
  }
}
