import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';

/**
 * Who is calling, for per-client budgets and idempotency scopes: a digest of the API key (never
 * the key itself), or `anonymous` when the API runs without keys.
 */
export function clientScope(req: FastifyRequest): string {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
  return match ? `key:${createHash('sha256').update(match[1]).digest('hex').slice(0, 24)}` : 'anonymous';
}

/** The rate-limit identity: the key's digest, or the caller's address without keys. */
export function rateLimitIdentity(req: FastifyRequest): string {
  const scope = clientScope(req);
  return scope === 'anonymous' ? `ip:${req.ip}` : scope;
}
