#!/usr/bin/env node
'use strict';
/**
 * A/B of two builds on the c=1 path: what one sequential sync request costs through each.
 *
 *   node bench/overhead/ab.js <build A> <build B>     e.g. tmp/ab-base/dist dist
 *
 * The timed-percentile runs of run.js cannot resolve a few tenths of a millisecond on these
 * machines: the fake's 20 ms timer and the run-to-run drift are larger than that. This probe
 * removes both: the fake answers at once (latency 0), both builds run side by side (a fake, and
 * per build an API and a worker on their own queue prefix), and the requests alternate between
 * them in blocks of BLOCK, so that drift hits both alike. Each build is a dist/ tree inside the
 * repository (so that it finds node_modules), e.g. a baseline built from a worktree and copied
 * to tmp/ab-base/dist.
 *
 * Knobs (env): AB_BLOCKS (default 30), AB_BLOCK (default 100 requests), AB_WARMUP (default 500
 * requests per build), AB_WORKLOAD (chat, the default, or embedding: one text), AB_LATENCY_MS (the fake's latency, default 0; at 20, as in run.js, every
 * process on the path sleeps between hops and each hop pays a wake-up), AB_CONCURRENCY (WORKER_CONCURRENCY of A and B, default `128,128`; e.g.
 * `1,128` with the same build twice compares the two). Output: the median, p90 and mean of each build, the direct SDK call's
 * median for reference, and B − A.
 */

const crypto = require('node:crypto');
const path = require('node:path');
const { OpenAI } = require('openai');
const { ROOT, posNum, log, prefixes, startChild, waitForLine, stopChild, freePort, gatewayEnv, startApi, runBench, deletePrefixKeys, syncRequest } = require('../support');
const IORedis = require('ioredis');

const BLOCKS = posNum(process.env.AB_BLOCKS, 30);
const BLOCK = posNum(process.env.AB_BLOCK, 100);
const WARMUP = posNum(process.env.AB_WARMUP, 500);
const CONCURRENCY = (process.env.AB_CONCURRENCY || '128,128').split(',');
const LATENCY_MS = String(posNum(process.env.AB_LATENCY_MS, 0));
/** AB_WORKLOAD: chat (default) or embedding (a single text, as in run.js). */
const WORKLOADS = {
  chat: {
    body: { provider: 'openai', model: 'gpt-4o-mini', inputs: { prompts: ['What is AI?'] }, parameters: { max_tokens: 50 } },
    direct: (client) => client.chat.completions.create({ model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'What is AI?' }], max_tokens: 50 }),
  },
  embedding: {
    body: { provider: 'openai', model: 'text-embedding-3-small', inputs: { text: 'machine learning' } },
    direct: (client) => client.embeddings.create({ model: 'text-embedding-3-small', input: 'machine learning' }),
  },
};
const WORKLOAD = WORKLOADS[process.env.AB_WORKLOAD || 'chat'];
if (!WORKLOAD) throw new Error(`AB_WORKLOAD must be one of ${Object.keys(WORKLOADS).join(', ')}`);
const BODY = JSON.stringify(WORKLOAD.body);

/** One sync request; resolves with its wall time in ms (fails on anything but a 200). */
async function request(port) {
  const [sent, answered] = await syncRequest(port, BODY);
  return Number(answered - sent) / 1e6;
}

async function startBuild(dist, fakeUrl, concurrency) {
  const prefix = `bench-ab-${crypto.randomBytes(4).toString('hex')}`;
  prefixes.add(prefix);
  const port = await freePort();
  const env = gatewayEnv({ port, prefix, fakeUrl, RATE_LIMITS_FILE: path.join(__dirname, 'limits.yaml'), SYNC_TIMEOUT_MS: '30000', WORKER_CONCURRENCY: concurrency, WORKER_SHUTDOWN_GRACE_MS: '2000' });
  const { api } = await startApi(path.resolve(ROOT, dist), env);
  const worker = startChild('worker', [path.join(path.resolve(ROOT, dist), 'apps/worker/src/main.js')], env);
  for (let i = 0; i < WARMUP; i++) await request(port);
  return { dist: `${dist} (concurrency ${concurrency})`, prefix, port, api, worker, samples: [] };
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const summary = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return { n: s.length, p50: pct(s, 50), p90: pct(s, 90), mean: s.reduce((a, b) => a + b, 0) / s.length };
};

async function main() {
  const [a, b] = process.argv.slice(2);
  if (!a || !b) throw new Error('usage: node bench/overhead/ab.js <build A dist> <build B dist>');
  const fakePort = await freePort();
  const fake = startChild('fake', [path.join(ROOT, 'dist/test/fakes/openai-fake.js'), '--port', String(fakePort), '--latency', LATENCY_MS, '--no-record'], {});
  const fakeUrl = (await waitForLine(fake, /^OPENAI_FAKE_URL=/, 15_000)).slice('OPENAI_FAKE_URL='.length).trim();
  const builds = [await startBuild(a, fakeUrl, CONCURRENCY[0]), await startBuild(b, fakeUrl, CONCURRENCY[1] ?? CONCURRENCY[0])];

  const client = new OpenAI({ apiKey: 'bench', baseURL: fakeUrl, maxRetries: 0 });
  const direct = [];
  const directCall = async () => {
    const t0 = process.hrtime.bigint();
    await WORKLOAD.direct(client);
    return Number(process.hrtime.bigint() - t0) / 1e6;
  };
  for (let i = 0; i < WARMUP; i++) await directCall();

  for (let blk = 0; blk < BLOCKS; blk++) {
    // A, B, direct in turn; the order flips every block.
    const order = blk % 2 === 0 ? [0, 1] : [1, 0];
    for (const k of order) for (let i = 0; i < BLOCK; i++) builds[k].samples.push(await request(builds[k].port));
    for (let i = 0; i < BLOCK / 4; i++) direct.push(await directCall());
  }

  const d = summary(direct);
  const rows = builds.map((x) => ({ build: x.dist, ...summary(x.samples) }));
  const f = (n) => n.toFixed(3);
  const out = [
    `| build | requests | p50 ms | p90 ms | mean ms | added p50 ms (− direct p50 ${f(d.p50)}) |`,
    '|---|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.build} | ${r.n} | ${f(r.p50)} | ${f(r.p90)} | ${f(r.mean)} | ${f(r.p50 - d.p50)} |`),
    '',
    `B − A: p50 ${f(rows[1].p50 - rows[0].p50)} ms, mean ${f(rows[1].mean - rows[0].mean)} ms`,
  ];
  process.stdout.write(out.join('\n') + '\n');

  for (const x of builds) {
    await stopChild(x.worker);
    await stopChild(x.api);
  }
  await stopChild(fake);
  const redis = new IORedis(process.env.REDIS_URL || 'redis://127.0.0.1:6379');
  for (const x of builds) await deletePrefixKeys(redis, x.prefix);
  redis.disconnect();
  log('done');
}

runBench(main);
