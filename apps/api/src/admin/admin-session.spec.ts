import { AdminSession } from './admin-session';

describe('AdminSession', () => {
  const keyA = 'admin-key-aaaaaaaaaaaaaaaa';
  const keyB = 'admin-key-bbbbbbbbbbbbbbbb';
  const now = 1_700_000_000_000;

  it('knows its keys, and only those', () => {
    const session = new AdminSession([keyA, keyB]);
    expect(session.isAdminKey(keyA)).toBe(true);
    expect(session.isAdminKey(keyB)).toBe(true);
    expect(session.isAdminKey(`${keyA}x`)).toBe(false);
    expect(session.isAdminKey('')).toBe(false);
    expect(session.isAdminKey(undefined)).toBe(false);
  });

  it('issues a session only for an admin key; it verifies until it expires', () => {
    const session = new AdminSession([keyA], 60_000);
    expect(session.issue('nope', now)).toBeUndefined();
    const cookie = session.issue(keyA, now)!;
    expect(cookie).toMatch(/^v1\.\d+\.[0-9a-f]{24}\.[\w-]{43}$/);
    expect(cookie).not.toContain(keyA);
    expect(session.verify(cookie, now + 59_999)).toBe(true);
    expect(session.verify(cookie, now + 60_000)).toBe(false);
  });

  it('refuses a tampered, truncated or foreign session', () => {
    const session = new AdminSession([keyA]);
    const cookie = session.issue(keyA, now)!;
    const [v, expires, nonce, sig] = cookie.split('.');
    expect(session.verify(`${v}.${Number(expires) + 1}.${nonce}.${sig}`, now)).toBe(false);
    expect(session.verify(`${v}.${expires}.${nonce}.${sig.slice(0, -2)}`, now)).toBe(false);
    expect(session.verify(`v2.${expires}.${nonce}.${sig}`, now)).toBe(false);
    expect(session.verify(`${v}.${expires}.${nonce}`, now)).toBe(false);
    expect(session.verify(undefined, now)).toBe(false);
    expect(new AdminSession([keyB]).verify(cookie, now)).toBe(false);
  });

  it('is accepted by every process with the same keys, and ends when its key is removed', () => {
    const cookieB = new AdminSession([keyA, keyB]).issue(keyB, now)!;
    expect(new AdminSession([keyB, keyA]).verify(cookieB, now)).toBe(true);
    expect(new AdminSession([keyA]).verify(cookieB, now)).toBe(false);
  });
});
