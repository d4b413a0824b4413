/** RFC 7240 `Prefer`: `respond-async` and `wait=<seconds>`; anything else is ignored. */
export function parsePrefer(header: string | undefined): { respondAsync: boolean; waitMs?: number } {
  const result: { respondAsync: boolean; waitMs?: number } = { respondAsync: false };
  for (const part of (header ?? '').split(/[,;]/)) {
    const [name, value] = part.trim().toLowerCase().split('=');
    if (name === 'respond-async') result.respondAsync = true;
    if (name === 'wait' && value !== undefined && /^\d+$/.test(value.trim())) result.waitMs = Number(value.trim()) * 1000;
  }
  return result;
}
