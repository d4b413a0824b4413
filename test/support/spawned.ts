import { ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';

const DIST = path.join(__dirname, '..', '..', 'dist', 'apps');

export interface Spawned {
  child: ChildProcess;
  output(): string;
  /** Resolves when the output contains `text`. */
  waitFor(text: string, timeoutMs?: number): Promise<void>;
  /** Resolves with the exit code (or signal) once the process has ended. */
  exited: Promise<number | string>;
}

/** Runs a built app (`npm run build` first; `npm test` does) with exactly this environment. */
export function spawnApp(app: 'api' | 'worker', env: Record<string, string>): Spawned {
  const child = spawn(process.execPath, [path.join(DIST, app, 'src', 'main.js')], {
    env: { PATH: process.env.PATH ?? '', NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const listeners = new Set<() => void>();
  for (const stream of [child.stdout!, child.stderr!]) {
    stream.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      for (const l of listeners) l();
    });
  }
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  return {
    child,
    output: () => out,
    exited,
    waitFor: (text, timeoutMs = 15_000) =>
      new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (out.includes(text)) {
            listeners.delete(check);
            clearTimeout(timer);
            resolve();
          }
        };
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`no "${text}" in ${app} output within ${timeoutMs} ms:\n${out}`));
        }, timeoutMs);
        listeners.add(check);
        check();
        void exited.then(() => {
          if (!out.includes(text)) {
            clearTimeout(timer);
            reject(new Error(`${app} exited before printing "${text}":\n${out}`));
          }
        });
      }),
  };
}
