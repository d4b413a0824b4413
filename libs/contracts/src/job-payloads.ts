import { randomUUID } from 'node:crypto';
import { ErrorDetail, ErrorType } from './errors';
import { NormalizedRequest, RawInferenceResponse } from './raw-inference';
import { isQueueName, QueueName } from './queue-name';
import type { BatchLineRef } from './batch';

/** Every job name the queues carry; each has exactly one payload type below. */
export enum JobName {
  Inference = 'inference',
}

/** The payload of one `/v1/inference` request travelling through its provider queue. */
export interface InferenceJobData {
  /**
   * Set by the API on a job that goes straight from its fetch to the provider call (chat
   * without the semantic cache, a single-text embedding): the limiter subject, `[model,
   * estimated tokens, 1 when the provider's default_max_tokens is still to be added, 1 for a
   * text embedding]` (admitted on fetch only by workers without an exact cache or coalescing,
   * which change what it is charged). The worker's fetch admits such a job in the same Redis
   * round trip (FETCH_ADMIT_LUA reads it without parsing the rest of the
   * data, so it must stay the first key). The worker drops it when it records limiter state.
   */
  admit?: FetchAdmitSubject;
  request: NormalizedRequest;
  /** Epoch ms when the API received the request; `latency_ms` is measured from here. */
  receivedAt: number;
  /** Pub/sub channel of the API process waiting synchronously for this job, if any. */
  notify?: string;
  /** The request's `x-request-id` (the client's, or one the API made up): the worker's log lines about this job carry it. */
  requestId?: string;
  /** `enable_semantic_cache: true`: the semantic cache may answer; `delta` is the request's `cache_delta` (null: the configured default). */
  semanticCache?: { delta: number | null };
  /** The worker's rate-limit bookkeeping (set by the worker, never by the API). */
  limiter?: LimiterState;
  /** Set by the worker on a `texts` job it split into `chunks` child jobs (`<id>-p<index>`), which it then reassembles. */
  split?: { chunks: number };
  /** Set on the job of a batch line: the worker records its outcome in the batch. */
  batch?: BatchLineRef;
  /** Set by the worker on a long audio/video job it split into child jobs (`<id>-m<index>`), which it then merges. */
  longMedia?: LongMediaPlan;
}

/** See InferenceJobData.admit. */
export type FetchAdmitSubject = [model: string, tokens: number, addDefaultMaxTokens: 0 | 1, textEmbedding?: 1];

/** How a long audio or video job was cut: one part per child job, offsets in s of the source. */
export interface LongMediaPlan {
  kind: 'audio' | 'video';
  durationSec: number;
  parts: Array<{ start: number; from?: number; end: number }>;
}

/** Where a job stands with the provider's shared rate limits. */
export interface LimiterState {
  /** The job holds a reserved slot for the attempt with this `attemptsMade`. */
  prepaidAttempt?: number;
  /** Provider 429s this job has sat out, uncharged. */
  requeues?: number;
}

/** Job name -> payload. A processor is typed by the name it serves. */
export interface JobPayloadMap {
  [JobName.Inference]: InferenceJobData;
}

/** Job name -> what the processor returns (stored as the job's return value). */
export interface JobResultMap {
  [JobName.Inference]: RawInferenceResponse;
}

/**
 * Why a job failed, as the worker records it (JSON in BullMQ's `failedReason`). `retryable`
 * failures that ran out of attempts are shown to clients as "unavailable" (503/504).
 */
export interface JobFailure {
  error: ErrorDetail;
  retryable: boolean;
  canceled?: boolean;
}

const FAILURE_MARK = 'gw-failure:';

export function encodeFailure(failure: JobFailure): string {
  return FAILURE_MARK + JSON.stringify(failure);
}

export function decodeFailure(reason: string | undefined | null): JobFailure | undefined {
  if (!reason) return undefined;
  if (!reason.startsWith(FAILURE_MARK)) return undefined;
  try {
    return JSON.parse(reason.slice(FAILURE_MARK.length)) as JobFailure;
  } catch {
    return undefined;
  }
}

/** What a worker publishes to the waiting API process when a job ends. */
export interface CompletionNotice {
  id: string;
  state: 'completed' | 'failed';
  /** Omitted when large: the API then reads the job's stored return value. */
  result?: RawInferenceResponse;
  failure?: JobFailure;
}

/**
 * Job ids carry their queue (`openai-<uuid>`), so `GET /v1/inference/jobs/{id}` finds the job
 * with one read and no index. BullMQ forbids ':' in custom ids; '-' is safe.
 */
export function newJobId(queue: QueueName): string {
  return `${queue}-${randomUUID()}`;
}

export function queueOfJobId(jobId: string): QueueName | undefined {
  const dash = jobId.indexOf('-');
  if (dash <= 0) return undefined;
  const queue = jobId.slice(0, dash);
  return isQueueName(queue) ? queue : undefined;
}

/**
 * The error a client sees for a failed job. A failure the worker did not record in our format
 * (BullMQ's own, e.g. a job stalled too often) is an internal error with no internals shown.
 */
export function presentFailure(failure: JobFailure | undefined): ErrorDetail {
  return failure?.error ?? { type: ErrorType.Internal, message: 'The job failed inside the gateway', code: 'internal_error' };
}

export const CANCELED_FAILURE: JobFailure = {
  error: { type: ErrorType.BadRequest, message: 'The job was canceled before it finished', code: 'job_canceled' },
  retryable: false,
  canceled: true,
};
