import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** How long a dashboard login lasts: 12 hours, in milliseconds. */
export const ADMIN_SESSION_TTL_MS = 12 * 60 * 60 * 1000;

/** Name of the HttpOnly session cookie, valid under /admin only. */
export const ADMIN_COOKIE = 'gw_admin';

const VERSION = 'v1';

/**
 * Admin keys (ADMIN_API_KEYS) and the signed session cookie a login hands out. The cookie is
 * `v1.<expires ms>.<nonce>.<HMAC-SHA256>`, signed with a secret derived from the key that
 * logged in: every API process with the same keys accepts it (no shared session store), and
 * removing a key from ADMIN_API_KEYS ends the sessions it opened. Keys are compared as digests
 * in constant time and never leave this class.
 */
export class AdminSession {
  private readonly digests: Buffer[];
  private readonly secrets: Buffer[];

  constructor(
    keys: readonly string[],
    private readonly ttlMs = ADMIN_SESSION_TTL_MS,
  ) {
    this.digests = keys.map(digest);
    this.secrets = keys.map((key) => createHmac('sha256', key).update('gw-admin-session').digest());
  }

  /** The index of the admin key `given` is, or -1; runs through every key whatever matches. */
  private keyIndex(given: string | undefined): number {
    if (!given) return -1;
    const d = digest(given);
    let found = -1;
    this.digests.forEach((known, i) => {
      if (timingSafeEqual(d, known) && found === -1) found = i;
    });
    return found;
  }

  isAdminKey(given: string | undefined): boolean {
    return this.keyIndex(given) >= 0;
  }

  /** A session cookie value for the admin key `key`, or undefined when it is not one. */
  issue(key: string, now = Date.now()): string | undefined {
    const i = this.keyIndex(key);
    if (i < 0) return undefined;
    const payload = `${VERSION}.${now + this.ttlMs}.${randomBytes(12).toString('hex')}`;
    return `${payload}.${sign(this.secrets[i], payload)}`;
  }

  /** Whether `value` is an unexpired session signed by one of the current keys. */
  verify(value: string | undefined, now = Date.now()): boolean {
    const parts = value?.split('.');
    if (!parts || parts.length !== 4 || parts[0] !== VERSION) return false;
    const expires = Number(parts[1]);
    if (!Number.isSafeInteger(expires) || expires <= now) return false;
    const payload = parts.slice(0, 3).join('.');
    const given = Buffer.from(parts[3], 'base64url');
    let ok = false;
    for (const secret of this.secrets) {
      const expected = Buffer.from(sign(secret, payload), 'base64url');
      ok = (given.length === expected.length && timingSafeEqual(given, expected)) || ok;
    }
    return ok;
  }

  get ttlSeconds(): number {
    return Math.floor(this.ttlMs / 1000);
  }
}

function digest(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}

function sign(secret: Buffer, payload: string): string {
  return createHmac('sha256', secret).update(payload).digest('base64url');
}
