import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** The example plugins shipped in examples/plugins (loaded by the tests as an operator would). */
export const EXAMPLES_DIR = path.resolve(__dirname, '../../examples/plugins');

/** Manifest fields every fixture shares unless it says otherwise. */
const BASE = {
  version: '1.0.0',
  outputs: [{ feature_name: 'result', feature_type: 'json' }],
  inputs: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'], additionalProperties: false },
};

/**
 * A PLUGINS_DIR in the temp folder for one test file: `add` writes a plugin folder (manifest +
 * module), `copyExample` copies one of examples/plugins, `remove` deletes everything.
 */
export class PluginFixtures {
  readonly dir = mkdtempSync(path.join(os.tmpdir(), 'gw-plugins-'));

  add(folder: string, manifest: Record<string, unknown>, code: string, entry = 'index.js'): string {
    const dir = path.join(this.dir, folder);
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'plugin.json'), JSON.stringify({ name: folder, ...BASE, entry, ...manifest }, null, 2));
    writeFileSync(path.join(dir, entry), code);
    return dir;
  }

  /** A folder with a raw plugin.json (broken manifests). */
  addRaw(folder: string, manifestText: string, files: Record<string, string> = {}): string {
    const dir = path.join(this.dir, folder);
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'plugin.json'), manifestText);
    for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
    return dir;
  }

  copyExample(name: string): void {
    cpSync(path.join(EXAMPLES_DIR, name), path.join(this.dir, name), { recursive: true });
  }

  /** A file in the fixtures folder (plugins write pid and marker files here for the tests). */
  file(name: string): string {
    return path.join(this.dir, name);
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** True while a process with this pid exists. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Plugins the tests share: each does one thing, written so that every failure names its cause. */
export const FIXTURE_CODE = {
  /** Echoes what it got, its pid and what it can see of the worker's environment. */
  echo: `
    exports.infer = async (inputs, parameters, context) => {
      context.logger.info('echo got', inputs.text);
      context.progress(0.5);
      return {
        inputs, parameters, output: context.output ?? null, plugin: context.plugin, pid: process.pid,
        sees_openai_key: 'OPENAI_API_KEY' in process.env, allowed_env: process.env.GW_TEST_PLUGIN_VAR ?? null,
      };
    };`,
  /** Throws what the input asks for. */
  thrower: `
    exports.infer = async (inputs) => {
      if (inputs.text === 'bad-input') throw Object.assign(new Error('text must be in French'), { status: 400 });
      if (inputs.text === 'busy') throw Object.assign(new Error('model server busy'), { retryable: true });
      if (inputs.text === 'secret') throw new Error('upstream refused key sk-abcdef1234567890');
      throw new TypeError('model exploded on ' + inputs.text);
    };`,
  /** Writes its pid, then never returns: 'wait' ignores its abort signal, 'spin' blocks the event loop. */
  hanger: (pidFile: string) => `
    const fs = require('node:fs');
    exports.infer = async (inputs, parameters, context) => {
      fs.writeFileSync(${JSON.stringify(pidFile)}, String(process.pid));
      if (inputs.text === 'spin') for (;;) {}
      if (inputs.text === 'polite') return new Promise((resolve) => context.signal.addEventListener('abort', () => resolve({ stopped: true })));
      return new Promise(() => {});
    };`,
  /** Ends its own process in the way the input asks. */
  crasher: `
    exports.infer = async (inputs) => {
      if (inputs.text === 'exit') process.exit(3);
      if (inputs.text === 'uncaught') { setTimeout(() => { throw new Error('boom from a timer'); }, 0); return new Promise(() => {}); }
      if (inputs.text === 'kill') process.kill(process.pid, 'SIGKILL');
      return { alive: true, pid: process.pid };
    };`,
  /** Returns something that is not an object. */
  bad_output: `
    exports.infer = async (inputs) => {
      if (inputs.text === 'array') return [1, 2];
      if (inputs.text === 'string') return 'hello';
      if (inputs.text === 'undefined') return undefined;
      if (inputs.text === 'bigint') return { n: 10n };
      return { ok: true };
    };`,
} as const;
