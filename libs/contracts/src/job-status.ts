import { ErrorDetail } from './errors';
import { RawInferenceResponse } from './raw-inference';

/** Job states as the wider API names them for tasks. */
export enum JobStatus {
  Pending = 'PENDING',
  InProgress = 'IN_PROGRESS',
  Completed = 'COMPLETED',
  Failed = 'FAILED',
  Canceled = 'CANCELED',
}

/** `GET /v1/inference/jobs/{id}` */
export interface JobView {
  job_id: string;
  status: JobStatus;
  progress: number | Record<string, unknown>;
  result?: RawInferenceResponse;
  error?: ErrorDetail;
  attempts: number;
  created_at: string;
  started_at?: string;
  finished_at?: string;
}

/** The 202 answer of an accepted request. */
export interface JobReference {
  job_id: string;
  status: JobStatus;
  status_url: string;
}

export function statusUrl(jobId: string): string {
  return `/v1/inference/jobs/${encodeURIComponent(jobId)}`;
}
