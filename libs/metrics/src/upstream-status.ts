import { JobFailure } from '@lib/contracts';

/** Failure codes that mean the provider's call failed (provider-error.ts decides them). */
const UPSTREAM_CODES = new Set([
  'provider_rejected_input',
  'provider_auth_failed',
  'provider_unavailable',
  'provider_rate_limited',
  'provider_timeout',
  'provider_unreachable',
  'provider_error',
]);

/**
 * The `status` label of gateway_upstream_errors_total for a failed attempt: the provider's HTTP
 * status, `timeout` or `network` when it gave none; undefined when the failure was not the
 * provider's (bad media, cancel, a bug of ours).
 */
export function upstreamStatusOf(failure: JobFailure | undefined): string | undefined {
  const code = failure?.error.code;
  if (!code || !UPSTREAM_CODES.has(code)) return undefined;
  const status = failure.error.details?.provider_status;
  if (typeof status === 'number') return String(status);
  if (code === 'provider_timeout') return 'timeout';
  if (code === 'provider_unreachable') return 'network';
  return 'unknown';
}
