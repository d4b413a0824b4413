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

type Writable = { write: (...args: unknown[]) => boolean; cork: () => void; uncork: () => void };
const coalescing = new WeakSet<object>();

/**
 * Commands sent on `client` in one event-loop turn after its first one leave together, in one
 * write system call when the turn ends (setImmediate), instead of one call each. The first
 * command of a turn is written at once, so a process that sends one command at a time (c=1)
 * waits for nothing. On a busy process, where many requests or jobs send their commands in the
 * same turn (a burst of HTTP requests, provider answers read together), a write to Redis is one
 * of its largest costs: each one wakes Redis inside the writer's own system call (CPU profiles
 * in bench/RESULTS.md, eighth session). ioredis's enableAutoPipelining does this with a
 * pipeline per turn and measured slower (same file); this only corks the socket. Not for
 * blocking connections, nor on a Redis Cluster (its node connections are made inside ioredis).
 */
export function coalesceWrites(client: { stream?: unknown; on(event: 'connect', listener: () => void): unknown; isCluster?: boolean }): void {
  if (client.isCluster) return;
  const hook = () => {
    const stream = client.stream as Writable | undefined;
    if (!stream || coalescing.has(stream)) return;
    coalescing.add(stream);
    const write = stream.write;
    let wrote = false;
    let corked = false;
    const endTurn = () => {
      wrote = false;
      if (corked) {
        corked = false;
        stream.uncork();
      }
    };
    stream.write = function (this: Writable, ...args: unknown[]): boolean {
      if (!wrote) {
        wrote = true;
        setImmediate(endTurn);
      } else if (!corked) {
        corked = true;
        stream.cork();
      }
      return write.apply(stream, args);
    };
  };
  client.on('connect', hook);
  hook();
}
