import { ChildProcess, fork } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import type { PluginDefinition } from './plugin-manifest';
import type { ChildMessage, ParentMessage, ThrownError } from './plugin-protocol';

/** Where a plugin's log lines go (Nest's Logger fits). */
export interface PluginLog {
  debug(message: string): void;
  log(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

/** What one call needs from the job: media on request, progress out. */
export interface PluginCallHooks {
  media(kind: 'bytes' | 'file', input: string): Promise<unknown>;
  progress?(value: number): void;
}

/** Why a call did not return a result. */
export type PluginFailure =
  | { kind: 'threw'; error: ThrownError }
  | { kind: 'crashed'; exitCode: number | null; signal: NodeJS.Signals | null; fatal?: string }
  | { kind: 'load'; message: string };

export class PluginCallError extends Error {
  constructor(readonly failure: PluginFailure) {
    super(failure.kind === 'threw' ? failure.error.message : failure.kind === 'load' ? failure.message : `exited (${failure.exitCode ?? failure.signal})`);
    this.name = 'PluginCallError';
  }
}

/** Variables every child gets; the manifest's `env` adds named ones. Nothing else leaks in. */
const BASE_ENV = ['PATH', 'HOME', 'TMPDIR', 'TMP', 'TEMP', 'LANG', 'LC_ALL', 'TZ', 'NODE_ENV', 'NODE_EXTRA_CA_CERTS', 'SYSTEMROOT'];
/** Plugin output lines longer than this are cut in the worker's log. */
const MAX_LOG_LINE = 2000;

interface Pending {
  resolve: (json: string | undefined) => void;
  reject: (err: PluginCallError) => void;
  hooks: PluginCallHooks;
}

/**
 * One child process running one plugin, one call at a time (PluginPool keeps several). It
 * speaks the IPC protocol of plugin-protocol.ts, forwards the plugin's stdout/stderr to the
 * worker's log, and turns the child's death into a `crashed` failure of the call it was running.
 */
export class PluginProcess {
  private readonly pending = new Map<number, Pending>();
  private seq = 0;
  private exited = false;
  private fatal?: string;
  private readonly exitListeners: Array<() => void> = [];

  private constructor(
    private readonly child: ChildProcess,
    private readonly plugin: PluginDefinition,
    private readonly log: PluginLog,
  ) {}

  get pid(): number | undefined {
    return this.child.pid;
  }

  get alive(): boolean {
    return !this.exited;
  }

  /** Forks the child and loads the module; rejects with a `load` failure it reports. */
  static start(plugin: PluginDefinition, log: PluginLog): Promise<PluginProcess> {
    const child = fork(childEntry(), [], {
      cwd: plugin.dir,
      env: childEnv(plugin.env),
      execArgv: [],
      serialization: 'advanced',
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    const proc = new PluginProcess(child, plugin, log);
    proc.wire();
    return new Promise<PluginProcess>((resolve, reject) => {
      const onMessage = (message: ChildMessage) => {
        if (message.type === 'ready') {
          done();
          resolve(proc);
        } else if (message.type === 'load_error') {
          done();
          reject(new PluginCallError({ kind: 'load', message: message.message }));
        }
      };
      const onExit = () => {
        done();
        reject(new PluginCallError({ kind: 'load', message: proc.fatal ?? 'its process exited while loading the module' }));
      };
      const done = () => {
        child.off('message', onMessage);
        child.off('exit', onExit);
      };
      child.on('message', onMessage);
      child.once('exit', onExit);
      proc.post({ type: 'init', name: plugin.name, version: plugin.version, entry: plugin.entry!, typescript: typescriptPath() });
    });
  }

  /** Runs one call; `abort` sends the plugin its abort signal (the pool decides when to kill). */
  call(inputs: Record<string, unknown>, parameters: Record<string, unknown>, output: string | undefined, hooks: PluginCallHooks): { id: number; result: Promise<string | undefined> } {
    const id = ++this.seq;
    const result = new Promise<string | undefined>((resolve, reject) => {
      if (this.exited) {
        reject(new PluginCallError({ kind: 'crashed', exitCode: this.child.exitCode, signal: this.child.signalCode, fatal: this.fatal }));
        return;
      }
      this.pending.set(id, { resolve, reject, hooks });
      this.post({ type: 'run', id, inputs, parameters, output });
    });
    return { id, result };
  }

  abort(id: number, reason: 'timeout' | 'canceled'): void {
    this.post({ type: 'abort', id, reason });
  }

  /** Calls running now (0 or 1 under the pool). */
  get busy(): boolean {
    return this.pending.size > 0;
  }

  onExit(listener: () => void): void {
    if (this.exited) listener();
    else this.exitListeners.push(listener);
  }

  kill(): void {
    if (!this.exited) this.child.kill('SIGKILL');
  }

  private post(message: ParentMessage): void {
    if (this.exited || !this.child.connected) return;
    this.child.send(message, (err) => {
      if (err) this.log.debug(`${this.label()}: message not delivered: ${err.message}`);
    });
  }

  private wire(): void {
    this.child.on('message', (message: ChildMessage) => this.onMessage(message));
    // An IPC error (the child died mid-send) shows up as an exit right after.
    this.child.on('error', (err) => this.log.warn(`${this.label()}: ${err.message}`));
    this.child.once('exit', (code, signal) => {
      this.exited = true;
      for (const [id, p] of this.pending) {
        this.pending.delete(id);
        p.reject(new PluginCallError({ kind: 'crashed', exitCode: code, signal, fatal: this.fatal }));
      }
      for (const listener of this.exitListeners.splice(0)) listener();
    });
    for (const [stream, write] of [
      [this.child.stdout, (line: string) => this.log.debug(line)],
      [this.child.stderr, (line: string) => this.log.warn(line)],
    ] as const) {
      if (!stream) continue;
      createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => write(`${this.label()}: ${line.slice(0, MAX_LOG_LINE)}`));
    }
  }

  private onMessage(message: ChildMessage): void {
    switch (message.type) {
      case 'result':
        this.settle(message.id)?.resolve(message.json);
        return;
      case 'error':
        this.settle(message.id)?.reject(new PluginCallError({ kind: 'threw', error: message.error }));
        return;
      case 'log': {
        const text = `${this.label()}: ${message.message.slice(0, MAX_LOG_LINE)}`;
        if (message.level === 'error') this.log.error(text);
        else if (message.level === 'warn') this.log.warn(text);
        else if (message.level === 'info') this.log.log(text);
        else this.log.debug(text);
        return;
      }
      case 'progress':
        this.pending.get(message.id)?.hooks.progress?.(message.value);
        return;
      case 'media':
        void this.answerMedia(message.id, message.requestId, message.kind, message.input);
        return;
      case 'fatal':
        this.fatal = message.message;
        this.log.warn(`${this.label()}: ${message.message}`);
        return;
      default:
        return;
    }
  }

  private settle(id: number): Pending | undefined {
    const p = this.pending.get(id);
    this.pending.delete(id);
    return p;
  }

  private async answerMedia(id: number, requestId: number, kind: 'bytes' | 'file', input: string): Promise<void> {
    const call = this.pending.get(id);
    if (!call) return;
    try {
      this.post({ type: 'media_reply', requestId, value: await call.hooks.media(kind, input) });
    } catch (err) {
      const e = err as { message?: string; code?: string };
      this.post({ type: 'media_reply', requestId, error: { message: e.message ?? String(err), code: e.code } });
    }
  }

  private label(): string {
    return `plugin ${this.plugin.name}@${this.plugin.version} (pid ${this.child.pid})`;
  }
}

function childEnv(allowed: string[]): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const name of [...BASE_ENV, ...allowed]) if (process.env[name] !== undefined) env[name] = process.env[name];
  return env;
}

let typescriptResolved: string | undefined | null = null;

/** The `typescript` package for `.ts` plugin entries, when installed (it is a dev dependency). */
function typescriptPath(): string | undefined {
  if (typescriptResolved === null) {
    try {
      typescriptResolved = require.resolve('typescript');
    } catch {
      typescriptResolved = undefined;
    }
  }
  return typescriptResolved;
}

let childFile: string | undefined;

/**
 * The compiled child entry next to this file (dist). Run from TypeScript sources (tests), the
 * child is compiled once with TypeScript's transpiler into the temp folder: it imports only Node
 * built-ins, so the single file is the whole program.
 */
function childEntry(): string {
  if (childFile) return childFile;
  const compiled = path.join(__dirname, 'plugin-child.js');
  if (existsSync(compiled)) return (childFile = compiled);
  const source = readFileSync(path.join(__dirname, 'plugin-child.ts'), 'utf8');
  const ts = require('typescript') as typeof import('typescript');
  const out = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true } });
  const dir = path.join(os.tmpdir(), 'inference-gateway-plugin-child');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `plugin-child-${createHash('sha256').update(out.outputText).digest('hex').slice(0, 12)}.js`);
  if (!existsSync(file)) {
    // Written aside and renamed: concurrent test processes never read a half-written file.
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, out.outputText);
    renameSync(tmp, file);
  }
  return (childFile = file);
}
