/**
 * The entry of a plugin's child process (forked by PluginProcess). It loads one plugin module
 * and runs `infer(inputs, parameters, context)` for each `run` message. Only Node built-ins
 * are imported, so the file runs as it is compiled, with no path aliases or gateway code: a
 * plugin cannot reach the worker's memory, connections or secrets, and whatever it does to this
 * process (throw, hang, exit, crash) ends here.
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { ChildMessage, InitMessage, ParentMessage, RunMessage, ThrownError } from './plugin-protocol';

type Infer = (inputs: unknown, parameters: unknown, context: unknown) => unknown;

let infer: Infer | undefined;
let label = 'plugin';
const calls = new Map<number, AbortController>();
const media = new Map<number, { resolve: (value: unknown) => void; reject: (err: Error) => void }>();
let mediaSeq = 0;

function send(message: ChildMessage): void {
  if (process.connected) process.send!(message);
}

/** Real ESM import: a plain `import()` would be compiled to `require` in this CommonJS file. */
const importModule = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<Record<string, unknown>>;

async function load(init: InitMessage): Promise<void> {
  label = `${init.name}@${init.version}`;
  let mod: Record<string, unknown>;
  try {
    if (init.entry.endsWith('.ts')) {
      registerTypeScript(init.typescript);
      mod = require(init.entry);
    } else if (init.entry.endsWith('.mjs')) {
      mod = await importModule(pathToFileURL(init.entry).href);
    } else {
      try {
        mod = require(init.entry);
      } catch (err) {
        if ((err as { code?: string }).code !== 'ERR_REQUIRE_ESM') throw err;
        mod = await importModule(pathToFileURL(init.entry).href);
      }
    }
  } catch (err) {
    return exitWith({ type: 'load_error', message: `loading ${init.entry} failed: ${describe(err).name}: ${describe(err).message}` });
  }
  const found = [mod.infer, (mod.default as Record<string, unknown> | undefined)?.infer, mod.default].find((f) => typeof f === 'function');
  if (!found) return exitWith({ type: 'load_error', message: `${init.entry} exports no infer function (export async function infer(inputs, parameters, context))` });
  infer = found as Infer;
  send({ type: 'ready' });
}

/** `.ts` entries (and the `.ts` files they require) are compiled on load with TypeScript's transpiler. */
function registerTypeScript(typescriptPath: string | undefined): void {
  if (!typescriptPath) throw new Error('the entry is TypeScript, but the gateway has no "typescript" package installed: compile the plugin to JavaScript or install typescript');
  const ts = require(typescriptPath) as typeof import('typescript');
  const extensions = (require as unknown as { extensions: Record<string, (module: { _compile(code: string, file: string): void }, file: string) => void> }).extensions;
  extensions['.ts'] = (module, file) => {
    const out = ts.transpileModule(readFileSync(file, 'utf8'), {
      fileName: file,
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true, sourceMap: false },
    });
    module._compile(out.outputText, file);
  };
}

async function run(message: RunMessage): Promise<void> {
  const controller = new AbortController();
  calls.set(message.id, controller);
  const log = (level: 'debug' | 'info' | 'warn' | 'error') => (...parts: unknown[]) =>
    send({ type: 'log', id: message.id, level, message: parts.map((p) => (typeof p === 'string' ? p : safeJson(p))).join(' ') });
  const fetchMedia = (kind: 'bytes' | 'file') => (input: string) =>
    new Promise<unknown>((resolve, reject) => {
      const requestId = ++mediaSeq;
      media.set(requestId, { resolve, reject });
      send({ type: 'media', id: message.id, requestId, kind, input });
    });
  const context = {
    signal: controller.signal,
    output: message.output,
    plugin: label,
    logger: { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') },
    progress: (value: number) => {
      if (typeof value === 'number' && Number.isFinite(value)) send({ type: 'progress', id: message.id, value: Math.min(1, Math.max(0, value)) });
    },
    media: { bytes: fetchMedia('bytes'), file: fetchMedia('file') },
  };
  try {
    const result = await infer!(message.inputs, message.parameters, context);
    let json: string | undefined;
    try {
      json = JSON.stringify(result, (_key, value: unknown) => (ArrayBuffer.isView(value) && !(value instanceof DataView) ? Array.from(value as unknown as ArrayLike<number>) : value));
    } catch (err) {
      throw new Error(`its result is not JSON-serialisable: ${describe(err).message}`);
    }
    send({ type: 'result', id: message.id, json });
  } catch (err) {
    send({ type: 'error', id: message.id, error: describe(err) });
  } finally {
    calls.delete(message.id);
  }
}

function describe(err: unknown): ThrownError {
  if (!(err instanceof Error) && (typeof err !== 'object' || err === null)) return { name: 'Error', message: String(err) };
  const e = err as Partial<ThrownError> & { statusCode?: unknown };
  const status = typeof e.status === 'number' ? e.status : typeof e.statusCode === 'number' ? e.statusCode : undefined;
  return {
    name: typeof e.name === 'string' ? e.name : 'Error',
    message: typeof e.message === 'string' && e.message ? e.message : String(err),
    ...(status !== undefined ? { status } : {}),
    ...(typeof e.code === 'string' ? { code: e.code } : {}),
    ...(e.retryable === true ? { retryable: true } : {}),
  };
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function exitWith(message: ChildMessage, code = 1): void {
  if (!process.connected) process.exit(code);
  process.send!(message, () => process.exit(code));
}

process.on('message', (message: ParentMessage) => {
  switch (message.type) {
    case 'init':
      void load(message);
      return;
    case 'run':
      void run(message);
      return;
    case 'abort':
      calls.get(message.id)?.abort(new Error(message.reason === 'timeout' ? 'the call timed out' : 'the job was canceled'));
      return;
    case 'media_reply': {
      const waiter = media.get(message.requestId);
      media.delete(message.requestId);
      if (!waiter) return;
      if (message.error) waiter.reject(Object.assign(new Error(message.error.message), { code: message.error.code }));
      else waiter.resolve(message.value);
      return;
    }
  }
});

// A plugin's stray exception ends this process, never the worker; the worker is told why.
process.on('uncaughtException', (err) => exitWith({ type: 'fatal', message: `${label}: uncaught ${describe(err).name}: ${describe(err).message}` }, 70));
process.on('unhandledRejection', (err) => exitWith({ type: 'fatal', message: `${label}: unhandled rejection: ${describe(err).message}` }, 70));
// The worker is gone: nobody will read our answers.
process.on('disconnect', () => process.exit(0));
