import type { PluginDefinition } from './plugin-manifest';
import { PluginCallHooks, PluginLog, PluginProcess } from './plugin-process';

export interface PluginPoolOptions {
  /** PLUGIN_KILL_GRACE_MS: after a timeout or cancel, time the call gets to settle before its process is killed. */
  killGraceMs: number;
  log: PluginLog;
}

export interface PluginRun {
  inputs: Record<string, unknown>;
  parameters: Record<string, unknown>;
  output?: string;
  /** The job's signal: cancel or worker shutdown. */
  signal: AbortSignal;
  hooks: PluginCallHooks;
}

/** The call ran past the plugin's timeout; its process was told to stop and is killed if it does not. */
export class PluginTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`did not finish within ${timeoutMs} ms`);
    this.name = 'PluginTimeoutError';
  }
}

/**
 * The child processes of one plugin in this worker: at most `concurrency` (each runs one call
 * at a time), started on demand and kept warm. A process that dies is replaced by the next
 * call; one whose call timed out or was canceled is reused only if the call settles within the
 * grace time, else killed, so a hung plugin never holds a slot for longer than its timeout plus
 * the grace.
 */
export class PluginPool {
  private readonly idle: PluginProcess[] = [];
  private readonly all = new Set<PluginProcess>();
  private readonly slots: Slots;
  private closed = false;

  constructor(
    readonly plugin: PluginDefinition,
    private readonly options: PluginPoolOptions,
  ) {
    this.slots = new Slots(plugin.concurrency);
  }

  /** Processes alive now (for tests and logs). */
  get size(): number {
    return this.all.size;
  }

  /** The result as JSON text; rejects with a PluginCallError, PluginTimeoutError or the signal's reason. */
  async run(run: PluginRun): Promise<string | undefined> {
    await this.slots.acquire(run.signal);
    let holdsSlot = true;
    try {
      const proc = await this.take();
      const { id, result } = proc.call(run.inputs, run.parameters, run.output, run.hooks);
      const outcome = await settleWithin(result, this.plugin.timeoutMs, run.signal);
      if (outcome.kind === 'settled') {
        if (proc.alive && !this.closed) this.idle.push(proc);
        if (outcome.error) throw outcome.error;
        return outcome.value;
      }
      // Timed out or canceled: the plugin hears its abort signal; the slot is freed when the
      // call settles or its process is killed, whichever comes first.
      proc.abort(id, outcome.kind === 'timeout' ? 'timeout' : 'canceled');
      holdsSlot = false;
      this.drain(proc, result);
      if (outcome.kind === 'timeout') throw new PluginTimeoutError(this.plugin.timeoutMs);
      throw run.signal.reason ?? new Error('aborted');
    } finally {
      if (holdsSlot) this.slots.release();
    }
  }

  /** Starts one process ahead of the first call, so a module that does not load is reported at start-up. */
  async warm(): Promise<void> {
    // Takes a slot like a call, so warming never starts a process beyond `concurrency`.
    await this.slots.acquire(new AbortController().signal);
    try {
      if (this.all.size > 0) return;
      const proc = await this.start();
      if (this.closed) proc.kill();
      else this.idle.push(proc);
    } finally {
      this.slots.release();
    }
  }

  close(): void {
    this.closed = true;
    for (const proc of this.all) proc.kill();
    this.idle.length = 0;
  }

  private async take(): Promise<PluginProcess> {
    for (let proc = this.idle.pop(); proc; proc = this.idle.pop()) if (proc.alive) return proc;
    return this.start();
  }

  private async start(): Promise<PluginProcess> {
    const proc = await PluginProcess.start(this.plugin, this.options.log);
    this.all.add(proc);
    proc.onExit(() => {
      this.all.delete(proc);
      const i = this.idle.indexOf(proc);
      if (i >= 0) this.idle.splice(i, 1);
    });
    return proc;
  }

  private drain(proc: PluginProcess, result: Promise<unknown>): void {
    const timer = setTimeout(() => proc.kill(), this.options.killGraceMs);
    const done = () => {
      clearTimeout(timer);
      if (proc.alive && !this.closed) this.idle.push(proc);
      this.slots.release();
    };
    result.then(done, done);
  }
}

type Outcome<T> = { kind: 'settled'; value?: T; error?: unknown } | { kind: 'timeout' } | { kind: 'aborted' };

function settleWithin<T>(promise: Promise<T>, timeoutMs: number, signal: AbortSignal): Promise<Outcome<T>> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve({ kind: 'aborted' });
    const timer = setTimeout(() => finish({ kind: 'timeout' }), timeoutMs);
    const onAbort = () => finish({ kind: 'aborted' });
    signal.addEventListener('abort', onAbort, { once: true });
    const finish = (outcome: Outcome<T>) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      resolve(outcome);
    };
    promise.then(
      (value) => finish({ kind: 'settled', value }),
      (error: unknown) => finish({ kind: 'settled', error }),
    );
  });
}

/** A counting semaphore whose waiters give up when their job is canceled. */
class Slots {
  private readonly waiters: Array<() => void> = [];

  constructor(private free: number) {}

  acquire(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(signal.reason ?? new Error('aborted'));
    if (this.free > 0) {
      this.free--;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const grant = () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = () => {
        const i = this.waiters.indexOf(grant);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(signal.reason ?? new Error('aborted'));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(grant);
    });
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.free++;
  }
}
