#!/usr/bin/env node
/**
 * `npm run demo`: the gateway (API + worker) in front of the OpenAI wire fake from test/fakes,
 * so that the README's curl examples answer without an OpenAI key. Needs a built dist/.
 */
const { spawn } = require('node:child_process');
const path = require('node:path');
const readline = require('node:readline');

const root = path.join(__dirname, '..');
const fake = spawn(process.execPath, [path.join(root, 'dist/test/fakes/openai-fake.js'), '--port', process.env.FAKE_PORT || '8089', '--no-record'], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
let gateway;
readline.createInterface({ input: fake.stdout }).on('line', (line) => {
  const match = /^OPENAI_FAKE_URL=(.*)$/.exec(line);
  if (!match || gateway) return;
  process.stdout.write(`[demo] fake OpenAI at ${match[1]} (answers "echo: <prompt>", deterministic embeddings)\n`);
  gateway = spawn(process.execPath, [path.join(root, 'dist/apps/all-in-one.js')], {
    stdio: 'inherit',
    env: { ...process.env, OPENAI_API_KEY: 'demo', OPENAI_BASE_URL: match[1], MEDIA_ALLOW_PRIVATE_URLS: process.env.MEDIA_ALLOW_PRIVATE_URLS || 'true' },
  });
  gateway.on('exit', (code) => {
    fake.kill('SIGTERM');
    process.exitCode = code ?? 0;
  });
});
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    if (gateway) gateway.kill('SIGTERM');
    else fake.kill('SIGTERM');
  });
}
