/**
 * Runs `write` with the client's socket corked, so that the commands it sends leave in one
 * write system call (ioredis writes each command to its socket as it is sent).
 */
export function writeTogether<T>(client: unknown, write: () => T): T {
  const stream = (client as { stream?: { cork?: () => void; uncork?: () => void } }).stream;
  stream?.cork?.();
  try {
    return write();
  } finally {
    stream?.uncork?.();
  }
}
