import { Job, Processor, RedisClient, Worker, WorkerOptions } from 'bullmq';
import type IORedis from 'ioredis';
import { LuaScript, writeTogether } from '@lib/queue';

/** BullMQ 5 Worker internals this class relies on (private in its typings; pinned by the tests). */
interface WorkerInternals {
  waitForJob(bclient: RedisClient, blockUntil: number): Promise<number>;
  updateDelays(limitDelay?: number, delayUntil?: number): void;
  isRateLimited(): boolean;
  paused: boolean;
  closing: Promise<void> | undefined;
  /** The last fetch found the queue empty: the next one waits in BZPOPMIN first. */
  drained: boolean;
}

/**
 * On a worker that was idle, the fetch after a job starts waits for the job's provider call to
 * go out (StartFirstWorker.releaseFetch), at most this long: jobs that never call a provider (a
 * cache hit, a job the rate limiter sends to sleep) release it by this timer, and a hold ends
 * with its job at the latest. A job that arrives meanwhile is fetched when the hold ends, or by
 * the completion of the running job (moveToFinished fetches the next job).
 */
export const FETCH_HOLD_MS = 2;

export interface StartFirstWorkerOptions extends WorkerOptions {
  /** How long a held fetch waits for releaseFetch at most. @defaultValue FETCH_HOLD_MS */
  fetchHoldMs?: number;
  /**
   * Called in the write of every fetch behind a wait (2.), right after its moveToActive: what it
   * sends on `client` runs in Redis as soon as the fetch hands out a job, in the same round trip
   * (the rate gate admits the job there: RateGate.admitOnFetch). `token` is the token the
   * fetched job runs with; `keys` are the queue's active list and its job key prefix.
   */
  onFetch?: (client: RedisClient, token: string, keys: { active: string; jobPrefix: string }) => void;
}

/**
 * A fetch written behind a wait carries the time it was written, which can be long before the
 * job it hands out was even added: BullMQ's moveToActive stores that time as the job's
 * processedOn. This script, written right behind it, stamps the job that fetch locked (at the
 * head of the active list, locked with the fetch's token) with Redis's clock instead and
 * answers that time; false when the fetch handed out no job. KEYS: active list. ARGV: job key
 * prefix, token.
 */
const STAMP_STARTED = new LuaScript(`
local id = redis.call('LINDEX', KEYS[1], 0)
if not id then return false end
local key = ARGV[1] .. id
if redis.call('GET', key .. ':lock') ~= ARGV[2] then return false end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', key, 'processedOn', now)
return now
`);

/** What the moveToActive script answers: job data, job id, rate-limit delay, next delayed job's time. */
type MoveToActiveAnswer = [unknown, string | undefined, number | undefined, number | undefined];

/** The CLIENT command of the ioredis client behind BullMQ's adapter (its proxy forwards it). */
type ClientCommand = { client(subcommand: string, ...args: Array<string | number>): Promise<unknown> };

/**
 * A BullMQ Worker that starts a job as soon as Redis can hand it over.
 *
 * 1. **It starts a job before it fetches the next one.** BullMQ's main loop, with a
 *    concurrency above 1, fills its free slots first: after moveToActive hands it a job it calls
 *    moveToActive again, and starts the fetched job only once that call has answered "no job" or
 *    every slot is taken. A burst of N jobs into an idle worker is fetched one round trip at a
 *    time, all N, before the first one starts. Here the call right after a successful fetch
 *    answers "no job" without going to Redis, so the loop starts the fetched job at once and
 *    fetches again on its next turn, while the job runs (bench/overhead/burst.js: median start of
 *    a 64-job burst 30 -> 25 ms). `moveToActive` is the extension point BullMQ declares (protected).
 * 2. **An idle worker's fetch waits in Redis behind its wake-up.** An idle worker blocks in
 *    BZPOPMIN on its blocking connection and, once woken, sends moveToActive on its other
 *    connection: a round trip between a job's arrival and its start. Here moveToActive is written
 *    on the blocking connection right behind BZPOPMIN, so Redis runs it the moment the wait ends;
 *    BullMQ's next moveToActive call takes that answer instead of asking again. This wraps
 *    BullMQ's private `waitForJob`. The two commands leave in one write (writeTogether), with a
 *    script that sets the job's processedOn to when Redis handed it out (moveToActive's own
 *    time is that of the write, before the wait). Every
 *    prefetched job is taken by the loop: a wait that starts while one is held returns at once
 *    (a "no job" answer is dropped, keeping BullMQ's deadline for delayed jobs); before closing,
 *    the worker wakes its own wait (CLIENT UNBLOCK) and lets the loop take the answer while its
 *    connections are still open, so that no job is fetched into a closed connection. Not on a
 *    Redis Cluster, where the blocking client's commands spread over nodes: there the worker
 *    waits as BullMQ does.
 * 3. **After a job starts, the next fetch also goes behind a BZPOPMIN.** BullMQ's loop, after
 *    starting a job, fetches with a plain moveToActive until one answers "no job", and only then
 *    waits in BZPOPMIN. But moveToActive leaves a marker behind every job it hands out (BullMQ's
 *    "a job may be available"), so that BZPOPMIN returns at once and its queued moveToActive
 *    (2.) makes the same fetch in the same round trip: here the loop goes straight to it. On an
 *    idle queue that saves one moveToActive per job. That wait does not go out while the job
 *    starts: written before the job's first Redis call (the rate limiter) it delays that call,
 *    written during its round trip it delays the handling of the reply (traces in
 *    bench/RESULTS.md, sixth session). On a worker that was idle it waits until the job has sent
 *    its provider call (releaseFetch, called at the rate gate's admission) or FETCH_HOLD_MS; on
 *    a busy worker one event-loop turn.
 * 4. **Whatever the fetched job needs first from Redis can ride in the same round trip.** Every
 *    fetch behind a wait calls `onFetch` inside its write, after its moveToActive: the worker host
 *    queues the job's rate-limit admission there (RateGate.admitOnFetch), which Redis runs the
 *    moment the job is handed out.
 */
// Worker's own type parameters and defaults, so that the class stands wherever Worker does.
export class StartFirstWorker<D = any, R = any, N extends string = string> extends Worker<D, R, N> {
  /** A job moveToActive just handed out has not started yet. */
  private fetchedNotStarted = false;
  /** moveToActive queued behind the current BZPOPMIN, until the loop takes its answer. */
  private prefetched?: { token: string; answer: Promise<MoveToActiveAnswer | undefined>; started: Promise<number | undefined> };
  private prefetches = 0;
  /** The blocking connection's CLIENT ID (re-read after a reconnect), for CLIENT UNBLOCK. */
  private blockingId?: Promise<number | undefined>;
  private blockingClient?: RedisClient;
  private stopPrefetching = false;
  /** How the next wait starts (see nextFetchBehindWait): at once, a turn late, or when released. */
  private nextWait: 'now' | 'turn' | 'held' = 'now';
  /** Ends the current hold (releaseFetch, the timer, close). */
  private endHold?: () => void;
  /** Jobs running in this worker. */
  private jobsRunning = 0;

  private readonly fetchHoldMs: number;
  private readonly onFetch?: StartFirstWorkerOptions['onFetch'];

  constructor(name: string, processor?: string | URL | null | Processor<D, R, N>, opts?: StartFirstWorkerOptions) {
    super(name, processor, opts && withoutHold(opts));
    this.fetchHoldMs = opts?.fetchHoldMs ?? FETCH_HOLD_MS;
    this.onFetch = opts?.onFetch;
    const internals = this as unknown as WorkerInternals;
    const waitForJob = internals.waitForJob.bind(this);
    internals.waitForJob = (bclient, blockUntil) => this.waitAndPrefetch(waitForJob, bclient, blockUntil);
  }

  private async waitAndPrefetch(waitForJob: WorkerInternals['waitForJob'], bclient: RedisClient, blockUntil: number): Promise<number> {
    if (this.prefetched) {
      // The last wait ended without the loop asking for a job (a delayed job's marker, an error).
      // A job it fetched is taken now (0: "fetch"); a "no job" answer is dropped, and this wait
      // goes on with BullMQ's own deadline.
      const answer = await this.prefetched.answer;
      if (answer?.[0]) return 0;
      this.prefetched = undefined;
    }
    const start = this.nextWait;
    this.nextWait = 'now';
    if (start === 'turn') await new Promise<void>((resolve) => setImmediate(resolve));
    else if (start === 'held') await this.hold();
    const internals = this as unknown as WorkerInternals;
    const prefetch = !this.stopPrefetching && !bclient.isCluster && !internals.paused && !internals.closing && !internals.isRateLimited();
    if (!prefetch) return waitForJob(bclient, blockUntil);
    this.rememberBlockingId(bclient);
    // BullMQ writes BZPOPMIN synchronously in waitForJob; the moveToActive queues behind it, and
    // both leave in one write: a second write would find Redis woken by the first and pay again.
    return writeTogether(bclient, () => {
      const woke = waitForJob(bclient, blockUntil);
      const token = `${this.id}:p${this.prefetches++}`;
      const answer = this.scripts.moveToActive(bclient, token, this.opts.name) as Promise<MoveToActiveAnswer>;
      const started = STAMP_STARTED.run(bclient as unknown as IORedis, [this.keys.active], [this.keys[''], token]) as Promise<number | null>;
      this.prefetched = { token, answer: answer.catch(() => undefined), started: started.then((at) => at ?? undefined, () => undefined) };
      this.onFetch?.(bclient, token, { active: this.keys.active, jobPrefix: this.keys[''] });
      return woke;
    });
  }

  /** CLIENT ID of the blocking connection, read before it blocks (once per connection). */
  private rememberBlockingId(bclient: RedisClient): void {
    if (this.blockingClient === bclient && this.blockingId) return;
    this.blockingClient = bclient;
    const read = () => {
      this.blockingId = ((bclient as unknown as ClientCommand).client('ID') as Promise<number>).catch(() => undefined);
    };
    read();
    bclient.on('ready', read); // a reconnect is a new client id
  }

  protected override async moveToActive(client: RedisClient, token: string, name?: string): Promise<Job<D, R, N>> {
    if (this.prefetched) {
      // What Worker.moveToActive does with an answer, done when the loop takes it (so that its
      // delays are not overwritten by the wait's own result).
      const { token: prefetchToken, answer, started } = this.prefetched;
      this.prefetched = undefined;
      const [jobData, id, limitDelay, delayUntil] = (await answer) ?? [];
      (this as unknown as WorkerInternals).updateDelays(limitDelay, delayUntil);
      const job = await this.nextJobFromJobData(jobData as Parameters<Worker['nextJobFromJobData']>[0], id, prefetchToken);
      const startedAt = await started; // answered in the same reply as the fetch
      if (job && startedAt !== undefined) job.processedOn = startedAt;
      this.fetchedNotStarted = Boolean(job);
      return job;
    }
    if (this.fetchedNotStarted) {
      this.fetchedNotStarted = false;
      this.nextFetchBehindWait(client);
      // BullMQ's own "queue empty" answer: the loop then starts what it fetched.
      return undefined as unknown as Job<D, R, N>;
    }
    const job = await super.moveToActive(client, token, name);
    this.fetchedNotStarted = Boolean(job);
    return job;
  }

  override processJob(job: Job<D, R, N>, token: string, fetchNextCallback?: () => boolean): Promise<void | Job<D, R, N>> {
    if (this.fetchedNotStarted) {
      this.fetchedNotStarted = false;
      this.nextFetchBehindWait(this.blockingClient);
    }
    this.jobsRunning++;
    return super.processJob(job, token, fetchNextCallback).finally(() => {
      this.jobsRunning--;
      // A hold is for the job that started on an idle worker: it ends with that job at the latest.
      if (this.nextWait === 'held') this.nextWait = 'now';
      this.endHold?.();
    });
  }

  /**
   * A job this worker fetched starts: its next fetch goes through the blocking wait (3. above),
   * which returns at once on the marker moveToActive left, rather than a moveToActive of its own.
   * On a worker that was idle it is held until the job has sent its provider call
   * (releaseFetch) or `fetchHoldMs` has passed; on a busy one it goes a turn later.
   */
  private nextFetchBehindWait(client: RedisClient | undefined): void {
    if (this.stopPrefetching || !client || client.isCluster) return;
    (this as unknown as WorkerInternals).drained = true;
    this.nextWait = this.jobsRunning === 0 ? 'held' : 'turn';
  }

  private hold(): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => end(), this.fetchHoldMs);
      const end = () => {
        clearTimeout(timer);
        if (this.endHold === end) this.endHold = undefined;
        resolve();
      };
      this.endHold = end;
    });
  }

  /**
   * The job that started on this idle worker has sent its provider call: the fetch held back
   * for it goes out now (after this event-loop turn, so behind the call's own write).
   */
  releaseFetch(): void {
    const end = this.endHold;
    if (end) setImmediate(end);
  }

  override async close(force = false): Promise<void> {
    this.stopPrefetching = true;
    this.endHold?.();
    const pending = this.prefetched?.answer;
    if (pending) {
      // Wake our own wait so that the moveToActive behind it answers on a live connection; the
      // loop then takes the answer (a job runs as usual before the close completes).
      const id = await this.blockingId;
      const client = (await this.client) as unknown as ClientCommand;
      if (id !== undefined) await client.client('UNBLOCK', id).catch(() => undefined);
      await pending;
    }
    return super.close(force);
  }
}

function withoutHold({ fetchHoldMs: _hold, onFetch: _onFetch, ...options }: StartFirstWorkerOptions): WorkerOptions {
  return options;
}
