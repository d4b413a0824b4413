import { createHash, timingSafeEqual } from 'node:crypto';
import { ErrorType, GatewayError } from '@lib/contracts';

/**
 * A set of bearer keys, kept as SHA-256 digests and compared in constant time, so neither a
 * key's content nor its length leaks through timing. Used by every guard that checks keys.
 */
export class BearerKeys {
  private readonly digests: Buffer[];

  constructor(keys: readonly string[]) {
    this.digests = keys.map(digest);
  }

  get size(): number {
    return this.digests.length;
  }

  /**
   * Accepts an `Authorization: Bearer <key>` header holding one of the keys; otherwise a 401
   * (`missing_api_key` with `missingHint` as its message, or `invalid_api_key`).
   */
  check(header: string | undefined, missingHint = 'Missing API key: send Authorization: Bearer <key>'): void {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
    if (!match) throw new GatewayError(ErrorType.Unauthorized, missingHint, 'missing_api_key');
    const given = digest(match[1]);
    let ok = false;
    for (const known of this.digests) ok = timingSafeEqual(given, known) || ok;
    if (!ok) throw new GatewayError(ErrorType.Unauthorized, 'Invalid API key', 'invalid_api_key');
  }
}

function digest(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}
