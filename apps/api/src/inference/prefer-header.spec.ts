import { parsePrefer } from './prefer-header';

describe('parsePrefer', () => {
  it('reads respond-async and wait in any order and case', () => {
    expect(parsePrefer(undefined)).toEqual({ respondAsync: false });
    expect(parsePrefer('respond-async')).toEqual({ respondAsync: true });
    expect(parsePrefer('wait=5, Respond-Async')).toEqual({ respondAsync: true, waitMs: 5000 });
    expect(parsePrefer('return=minimal; wait=x')).toEqual({ respondAsync: false });
  });
});
