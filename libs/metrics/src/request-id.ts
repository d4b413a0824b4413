import { randomUUID } from 'node:crypto';

/** The header that carries a request id in and out (and into the job, and the worker's logs). */
export const REQUEST_ID_HEADER = 'x-request-id';

/** What a client may send as its own request id: short, and safe to put in a log line. */
const ACCEPTED = /^[A-Za-z0-9._:-]{1,128}$/;

/** The client's `x-request-id` when it is acceptable, else a new UUID. */
export function acceptRequestId(header: string | string[] | undefined): string {
  const value = Array.isArray(header) ? header[0] : header;
  return value !== undefined && ACCEPTED.test(value) ? value : randomUUID();
}
