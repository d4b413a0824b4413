import { Inject, Injectable } from '@nestjs/common';
import type IORedis from 'ioredis';
import { Job, JobState, Queue } from 'bullmq';
import {
  blobRefsOf,
  CANCELED_FAILURE,
  CompletionNotice,
  decodeFailure,
  ErrorType,
  GatewayError,
  InferenceJobData,
  JobStatus,
  JobView,
  presentFailure,
  queueOfJobId,
  RawInferenceResponse,
  unpackResult,
} from '@lib/contracts';
import { GATEWAY_CONFIG, GatewayConfig } from '@lib/config';
import { BlobStore, QueueRegistry, REDIS, RedisKeys } from '@lib/queue';

/** How long DELETE waits for a worker to stop a running job before answering 202. */
const CANCEL_WAIT_MS = 5_000;
const CANCEL_POLL_MS = 50;

/** What is kept of a job canceled while it waited (BullMQ removes the job itself). */
interface Tombstone {
  created_at: string;
  canceled_at: string;
  attempts: number;
}

/** `GET` and `DELETE /v1/inference/jobs/{id}`: job state in the API's terms. */
@Injectable()
export class JobsService {
  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    @Inject(REDIS) private readonly redis: IORedis,
    private readonly keys: RedisKeys,
    private readonly queues: QueueRegistry,
    private readonly blobs: BlobStore,
  ) {}

  async view(jobId: string): Promise<JobView> {
    const found = await this.load(jobId);
    if (!found) return this.tombstoneView(jobId);
    return toView(found.job, found.state);
  }

  async statusOf(jobId: string): Promise<JobStatus> {
    return (await this.view(jobId)).status;
  }

  /**
   * A waiting or delayed job is removed at once; a running one is aborted by its worker (the
   * cancel flag also stops a worker that picks it up this very moment). `settled` is false
   * when the worker had not stopped it within CANCEL_WAIT_MS.
   */
  async cancel(jobId: string): Promise<{ view: JobView; settled: boolean }> {
    const found = await this.load(jobId);
    if (!found) return { view: await this.tombstoneView(jobId), settled: true };
    const { job, state } = found;
    if (state === 'completed' || state === 'failed') return { view: toView(job, state), settled: true };

    const tombstone: Tombstone = {
      created_at: iso(job.timestamp)!,
      canceled_at: new Date().toISOString(),
      attempts: attemptsOf(job, state),
    };
    await this.redis.set(this.keys.cancelFlag(jobId), JSON.stringify(tombstone), 'EX', this.config.jobRetentionSeconds);
    await this.cancelChildren(job, tombstone);
    if (state !== 'active' && (await this.tryRemove(job))) {
      await this.blobs.delete(blobRefsOf(job.data.request)).catch(() => undefined);
      if (job.data.notify) {
        const notice: CompletionNotice = { id: jobId, state: 'failed', failure: CANCELED_FAILURE };
        await this.redis.publish(job.data.notify, JSON.stringify(notice));
      }
      return { view: tombstoneToView(jobId, tombstone), settled: true };
    }
    await this.redis.publish(this.keys.cancelChannel(), jobId);
    const deadline = Date.now() + CANCEL_WAIT_MS;
    for (;;) {
      const view = await this.view(jobId);
      const ended = [JobStatus.Canceled, JobStatus.Completed, JobStatus.Failed].includes(view.status);
      if (ended || Date.now() >= deadline) return { view, settled: ended };
      await new Promise((r) => setTimeout(r, CANCEL_POLL_MS));
    }
  }

  /**
   * The unfinished child jobs of a parent (parts of long media, chunks of a split embedding job):
   * waiting ones are removed, running ones get the cancel flag and are aborted by their worker.
   */
  private async cancelChildren(job: Job<InferenceJobData>, tombstone: Tombstone): Promise<void> {
    const { unprocessed = [] } = await job.getDependencies({ unprocessed: { count: 100_000 } });
    if (unprocessed.length === 0) return;
    const ids = unprocessed.map((key) => key.slice(key.lastIndexOf(':') + 1));
    for (const id of ids) await this.redis.set(this.keys.cancelFlag(id), JSON.stringify(tombstone), 'EX', this.config.jobRetentionSeconds);
    await job.removeUnprocessedChildren().catch(() => undefined);
    for (const id of ids) await this.redis.publish(this.keys.cancelChannel(), id);
  }

  private async tryRemove(job: Job<InferenceJobData>): Promise<boolean> {
    try {
      await job.remove();
      return true;
    } catch {
      return false; // locked: a worker took it meanwhile
    }
  }

  /**
   * The job and its state, consistent with each other: the job hash and the state are two
   * reads, and a job that ended between them is read again so that its result is there.
   */
  private async load(jobId: string): Promise<{ job: Job<InferenceJobData, RawInferenceResponse>; state: JobState | 'unknown' } | undefined> {
    let job = await this.find(jobId);
    if (!job) return undefined;
    const state = await job.getState();
    if ((state === 'completed' || state === 'failed') && !job.finishedOn) job = await this.find(jobId);
    return job ? { job, state } : undefined;
  }

  private async find(jobId: string): Promise<Job<InferenceJobData, RawInferenceResponse> | undefined> {
    const queue = queueOfJobId(jobId);
    if (!queue) throw notFound(jobId);
    const job = await (this.queues.get(queue) as Queue<InferenceJobData, RawInferenceResponse>).getJob(jobId);
    return job ?? undefined;
  }

  private async tombstoneView(jobId: string): Promise<JobView> {
    const raw = await this.redis.get(this.keys.cancelFlag(jobId));
    if (!raw) throw notFound(jobId);
    return tombstoneToView(jobId, JSON.parse(raw) as Tombstone);
  }
}

function notFound(jobId: string): GatewayError {
  return new GatewayError(ErrorType.NotFound, `No job "${jobId}" (finished jobs are kept for JOB_RETENTION_SECONDS)`, 'job_not_found', {
    job_id: jobId,
  });
}

export function toStatus(state: JobState | 'unknown', job: Job): JobStatus {
  switch (state) {
    case 'completed':
      return JobStatus.Completed;
    case 'failed':
      return decodeFailure(job.failedReason)?.canceled ? JobStatus.Canceled : JobStatus.Failed;
    case 'active':
    case 'waiting-children':
      return JobStatus.InProgress;
    case 'delayed':
      // Waiting for a retry is part of running; only a never-started job is pending.
      return job.attemptsMade > 0 ? JobStatus.InProgress : JobStatus.Pending;
    default:
      return JobStatus.Pending;
  }
}

function toView(job: Job<InferenceJobData, RawInferenceResponse>, state: JobState | 'unknown'): JobView {
  const status = toStatus(state, job);
  const view: JobView = {
    job_id: job.id!,
    status,
    progress: typeof job.progress === 'number' || typeof job.progress === 'object' ? (job.progress as JobView['progress']) : 0,
    attempts: attemptsOf(job, state),
    created_at: iso(job.timestamp)!,
  };
  // Embeddings are stored as float32 (packed-vectors.ts); the client reads JSON numbers.
  if (status === JobStatus.Completed) view.result = unpackResult(job.returnvalue);
  if (status === JobStatus.Failed || status === JobStatus.Canceled) view.error = presentFailure(decodeFailure(job.failedReason));
  if (job.processedOn) view.started_at = iso(job.processedOn);
  if (job.finishedOn) view.finished_at = iso(job.finishedOn);
  return view;
}

function tombstoneToView(jobId: string, t: Tombstone): JobView {
  return {
    job_id: jobId,
    status: JobStatus.Canceled,
    progress: 0,
    error: CANCELED_FAILURE.error,
    attempts: t.attempts,
    created_at: t.created_at,
    finished_at: t.canceled_at,
  };
}

/**
 * Attempts charged: BullMQ counts one per finished try (`attemptsMade`), plus the one running.
 * Waits for a rate-limit slot, 429 pauses and hand-backs at shutdown start a job again
 * (`attemptsStarted`) but are not attempts.
 */
function attemptsOf(job: Job, state: JobState | 'unknown'): number {
  return (job.attemptsMade ?? 0) + (state === 'active' ? 1 : 0);
}

function iso(ms: number | undefined): string | undefined {
  return ms ? new Date(ms).toISOString() : undefined;
}
