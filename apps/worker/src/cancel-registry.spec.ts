import { CancelRegistry } from './cancel-registry';

describe('CancelRegistry', () => {
  it('remembers a cancel for ten minutes', () => {
    const r = new CancelRegistry();
    r.remember('openai-1', 0);
    expect(r.has('openai-1', 1)).toBe(true);
    expect(r.has('openai-1', 10 * 60_000 + 1)).toBe(false);
    expect(r.has('openai-2', 1)).toBe(false);
  });

  it('stays bounded, dropping the oldest first', () => {
    const r = new CancelRegistry();
    for (let i = 0; i <= 100_000; i++) r.remember(`j${i}`, 0);
    expect(r.has('j0', 1)).toBe(false);
    expect(r.has('j100000', 1)).toBe(true);
  });
});
