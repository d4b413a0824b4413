import { ErrorDetail, ErrorType } from './errors';
import { NormalizedRequest, RawInferenceResponse } from './raw-inference';
import { QueueName } from './queue-name';
import { unpackResult } from './packed-vectors';

/** A batch's life: VALIDATING while its lines upload, then IN_PROGRESS until every line has an outcome. */
export enum BatchStatus {
  Validating = 'VALIDATING',
  InProgress = 'IN_PROGRESS',
  Finalizing = 'FINALIZING',
  Completed = 'COMPLETED',
  Failed = 'FAILED',
  Canceling = 'CANCELING',
  Canceled = 'CANCELED',
  /** Past BATCH_RETENTION_SECONDS after it ended: the results are gone, the status is kept as long again. */
  Expired = 'EXPIRED',
}

/** Where a batch line's job belongs (on `InferenceJobData.batch`). */
export interface BatchLineRef {
  id: string;
  /** 0-based line number in the upload. */
  index: number;
  customId: string | null;
}

export interface BatchRequestCounts {
  total: number;
  completed: number;
  failed: number;
}

/** `GET /v1/inference/batches/{id}`, the 202 of a submit, and the body POSTed to `callback_url`. */
export interface BatchView {
  batch_id: string;
  object: 'batch';
  status: BatchStatus;
  request_counts: BatchRequestCounts;
  /** Lines with an outcome / lines, in percent (0 while nothing is known). */
  progress: number;
  metadata: Record<string, unknown> | null;
  callback_url: string | null;
  results_url: string;
  /** Why the batch itself failed (the upload broke off, too many lines...). */
  error?: ErrorDetail;
  created_at: string;
  in_progress_at?: string;
  cancelling_at?: string;
  finished_at?: string;
  /** When the results stop being downloadable (set once the batch has ended). */
  expires_at?: string;
}

/** One line of `GET /v1/inference/batches/{id}/results`. */
export interface BatchResultLine {
  custom_id: string | null;
  /** 0-based line number in the upload. */
  index: number;
  response?: RawInferenceResponse;
  error?: ErrorDetail;
}

/** Meta hash fields (HGETALL) -> the client's view. `now` decides EXPIRED. */
export function batchViewOf(meta: Record<string, string>, now = Date.now()): BatchView {
  const counts: BatchRequestCounts = { total: int(meta.total), completed: int(meta.completed), failed: int(meta.failed) };
  const done = counts.completed + counts.failed;
  const expired = meta.expires_at !== undefined && Date.parse(meta.expires_at) <= now;
  const view: BatchView = {
    batch_id: meta.id,
    object: 'batch',
    status: expired ? BatchStatus.Expired : (meta.status as BatchStatus),
    request_counts: counts,
    progress: counts.total > 0 ? Math.floor((done / counts.total) * 1000) / 10 : 0,
    metadata: meta.metadata ? (JSON.parse(meta.metadata) as Record<string, unknown>) : null,
    callback_url: meta.callback_url || null,
    results_url: `/v1/inference/batches/${meta.id}/results`,
    created_at: meta.created_at,
  };
  if (meta.error) view.error = JSON.parse(meta.error) as ErrorDetail;
  for (const field of ['in_progress_at', 'cancelling_at', 'finished_at', 'expires_at'] as const) {
    if (meta[field]) view[field] = meta[field];
  }
  return view;
}

function int(value: string | undefined): number {
  return value ? Number(value) : 0;
}

/** Batch ids are `batch_` + 24 hex digits: no ':' (BullMQ job ids) and no '-' (job ids end in `-<index>`). */
export const BATCH_ID_PATTERN = /^batch_[0-9a-f]{24}$/;

/**
 * The job of line `index`: it starts with its queue like every job id (queueOfJobId), and is the
 * same on every try, so that feeding a line twice (after a crash) adds one job.
 */
export function batchJobId(queue: QueueName, batchId: string, index: number): string {
  return `${queue}-${batchId}-${index}`;
}

/** The line error of lines that never ran because the batch was canceled or failed. */
export function batchStoppedError(why: 'canceled' | 'failed'): ErrorDetail {
  return why === 'canceled'
    ? { type: ErrorType.BadRequest, message: 'The batch was canceled before this line started', code: 'batch_canceled' }
    : { type: ErrorType.BadRequest, message: 'The batch failed before this line started', code: 'batch_failed' };
}

/**
 * Every Redis key of one batch carries the batch id as a hash tag (`{batch_...}`), so that the
 * Lua scripts that touch several of them work on a Redis Cluster. `active` is the one key outside
 * a batch: the set of batches not yet finalized, which the workers' feeder walks.
 */
export class BatchKeys {
  constructor(readonly prefix: string) {}

  /** Hash: status, counters, timestamps, callback, metadata. */
  meta(id: string): string {
    return `${this.prefix}:batch:{${id}}:meta`;
  }

  /** Hash: line index -> result line (JSON). */
  results(id: string): string {
    return `${this.prefix}:batch:{${id}}:results`;
  }

  /** List of lines waiting, in input order, to be fed to their queues (JSON BatchPendingLine). */
  pending(id: string): string {
    return `${this.prefix}:batch:{${id}}:pending`;
  }

  /** Set of line indexes whose job is in a provider queue (at most BATCH_FEED_WINDOW). */
  queued(id: string): string {
    return `${this.prefix}:batch:{${id}}:queued`;
  }

  /** Held by whoever moves lines between `pending`, the queue and `results`. */
  lock(id: string): string {
    return `${this.prefix}:batch:{${id}}:lock`;
  }

  /** Set of ids of batches not yet finalized. */
  active(): string {
    return `${this.prefix}:batches:active`;
  }

  /** Sorted set of ids of ended batches with result pages on disk (score: when they expire, epoch ms). */
  expiring(): string {
    return `${this.prefix}:batches:expiring`;
  }
}

/** A validated line waiting in its batch to be fed to its provider queue. */
export interface BatchPendingLine {
  /** Line index. */
  i: number;
  /** custom_id. */
  c: string | null;
  q: QueueName;
  r: NormalizedRequest;
  /** x-request-id of the upload. */
  x?: string;
  /** `enable_semantic_cache` (with its `cache_delta`), as a single request carries it. */
  s?: { delta: number | null };
}

/** The queue of batch callbacks (not a provider queue: not in QueueName, no provider serves it). */
export const BATCH_CALLBACK_QUEUE = 'batch-callbacks';

/** Its BullMQ name: a hash tag of its own on a Redis Cluster, like the provider queues. */
export function batchCallbackQueueName(cluster: boolean): string {
  return cluster ? `{${BATCH_CALLBACK_QUEUE}}` : BATCH_CALLBACK_QUEUE;
}

/** The payload of a callback job: the batch as it ended, POSTed as is. */
export interface BatchCallbackJobData {
  url: string;
  batch: BatchView;
}

/**
 * Results are read, and moved out of Redis (BATCH_RESULTS_DIR), in pages of this many lines
 * aligned on the line index: page p holds lines p*1000 to p*1000+999, so a reader takes each page
 * whole from one place or the other, never half from each.
 */
export const BATCH_RESULTS_PAGE = 1000;

/** The ResultStore key of a batch's result page `page`; `batches/<id>` is the prefix of them all. */
export function batchResultPageKey(id: string, page: number): string {
  return `batches/${id}/${page}`;
}

/** A stored result line as the client gets it: embeddings stored as float32 (packed-vectors.ts) become JSON numbers. */
export function unpackResultLine(line: string): string {
  if (!line.includes('_f32"')) return line;
  const parsed = JSON.parse(line) as BatchResultLine;
  return JSON.stringify({ ...parsed, response: unpackResult(parsed.response) });
}
