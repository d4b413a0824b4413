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

type Writable = { write: (...args: unknown[]) => boolean; cork: () => void; uncork: () => void; writableCorked: number };
const coalescing = new WeakSet<object>();
/**
 * A connection whose last writing turn ended less than this long ago (ms) is busy: the first
 * command of a turn waits for the turn's end too, so that a busy process writes once a turn.
 */
const BUSY_GAP_MS = 1;

/**
 * Commands sent on `client` in one event-loop turn after its first one leave together, in one
 * write system call when the turn ends (setImmediate), instead of one call each. The first
 * command of a turn is written at once, so a process that sends one command at a time (c=1)
 * waits for nothing; a group written inside writeTogether counts as one command (the first of
 * a turn leaves at once, whole). When turns that write come less than BUSY_GAP_MS apart, the
 * first command waits for the end of its turn as well.
 *
 * On a busy process, where many requests or jobs send their commands in the same turn (a burst
 * of HTTP requests, provider answers read together), a write to Redis is one of its largest
 * costs: each one wakes Redis inside the writer's own system call (CPU profiles in
 * bench/RESULTS.md, eighth session). ioredis's enableAutoPipelining does this with a pipeline
 * per turn and measured slower (same file); this only corks the socket. Not for blocking
 * connections, nor on a Redis Cluster (its node connections are made inside ioredis).
 */
export function coalesceWrites(
  client: { stream?: unknown; on(event: 'connect', listener: () => void): unknown; isCluster?: boolean },
  options: { busyGapMs?: number } = {},
): void {
  if (client.isCluster) return;
  const busyGapMs = options.busyGapMs ?? BUSY_GAP_MS;
  const hook = () => {
    const stream = client.stream as Writable | undefined;
    if (!stream || coalescing.has(stream)) return;
    coalescing.add(stream);
    const write = stream.write;
    const uncork = stream.uncork;
    let wrote = false;
    let corked = false;
    // The turn's first command was written inside a writeTogether that is still open: the
    // rest of that group leaves with it.
    let firstGroup = false;
    /** When the last turn that wrote here ended (performance.now()). */
    let lastTurnEnd = -Infinity;
    const endTurn = () => {
      wrote = false;
      lastTurnEnd = performance.now();
      if (corked) {
        corked = false;
        stream.uncork();
      }
    };
    stream.uncork = function (this: Writable): void {
      uncork.call(stream);
      if (stream.writableCorked === 0) firstGroup = false;
    };
    stream.write = function (this: Writable, ...args: unknown[]): boolean {
      if (!wrote) {
        wrote = true;
        setImmediate(endTurn);
        if (performance.now() - lastTurnEnd < busyGapMs) {
          // Busy: turns that write follow each other; this one's commands all leave at its end.
          corked = true;
          stream.cork();
        } else {
          firstGroup = stream.writableCorked > 0;
        }
      } else if (!corked && !firstGroup) {
        corked = true;
        stream.cork();
      }
      return write.apply(stream, args);
    };
  };
  client.on('connect', hook);
  hook();
}
