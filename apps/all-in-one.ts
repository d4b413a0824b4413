/**
 * `npm start`: the API and one worker on one machine, as two processes (one core each on a
 * small machine). Text output is prefixed per process; JSON log lines pass through unchanged
 * (they name their process in "app"), so they stay one JSON object per line. A signal is
 * passed on to both; when either exits, the other is stopped and the launcher exits with the
 * first one's code.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { loadConfigAndRedisOrExit } from '@lib/queue';

const children: ChildProcess[] = [];
let exiting = false;

function run(name: string, script: string): ChildProcess {
  const child = spawn(process.execPath, [path.join(__dirname, script)], { stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
  for (const stream of [child.stdout!, child.stderr!]) {
    readline.createInterface({ input: stream }).on('line', (line) => process.stdout.write(line.startsWith('{') ? `${line}\n` : `[${name}] ${line}\n`));
  }
  child.on('exit', (code, signal) => {
    if (!exiting) {
      exiting = true;
      process.stdout.write(`[${name}] exited (${signal ?? code}); stopping the others\n`);
      for (const other of children) if (other !== child) other.kill('SIGTERM');
      process.exitCode = code ?? 1;
    }
  });
  children.push(child);
  return child;
}

async function main(): Promise<void> {
  // Check once here, so a missing Redis is one line, not one per process.
  await loadConfigAndRedisOrExit('gateway');
  run('api', 'api/src/main.js');
  run('worker', 'worker/src/main.js');
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      exiting = true;
      for (const child of children) child.kill('SIGTERM');
    });
  }
}

void main();
