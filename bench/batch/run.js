#!/usr/bin/env node
'use strict';
/**
 * Embedding throughput benchmark: 100k texts through `POST /v1/inference` against an OpenAI fake
 * that enforces an RPM/TPM limit itself (429 past it), with the gateway given the same limits.
 *
 *   npm run bench:batch          (builds, then runs this file)
 *   node bench/batch/run.js      (against an existing dist/)
 *
 * The `coalesce`, `split` and `single` scenarios drive the worker path with many
 * `Prefer: respond-async` requests; `batch` goes through the Batches API.
 *
 * Scenarios (BENCH_BATCH_SCENARIOS, comma separated, default coalesce,split,single):
 * - `coalesce`: 100k single-text jobs, COALESCE_WINDOW_MS=50: the workers merge them into calls.
 * - `split`: the same 100k texts as 20 requests of 5,000 `texts`: each is split into chunks of
 *   at most 2,048 inputs that run as child jobs and are reassembled.
 * - `batch`: the same 100k texts as lines of one NDJSON upload to POST /v1/inference/batches
 *   (coalescing on), results streamed back and checked for order.
 * - `single`: single-text jobs without coalescing (COALESCE_WINDOW_MS=0), fewer of them
 *   (BENCH_BATCH_SINGLE_TEXTS, default 2,000): at one call per text the RPM limit binds, and
 *   100k would take 100k / RPM minutes.
 *
 * Measured: wall time from the first request to the last job done, against the minimum the
 * limits allow (the fake's admitted tokens / TPM and calls / RPM, at the steady per-minute rate);
 * upstream calls (admitted and 429) against texts; Redis `used_memory`, sampled every 250 ms
 * (peak minus the value before the run; the Redis is shared, so other clients add noise), and
 * the run's own keys at the end (MEMORY USAGE over its prefix, and per finished job hash).
 *
 * Knobs (env): BENCH_BATCH_TEXTS (100000), BENCH_BATCH_RPM (1200), BENCH_BATCH_TPM (120000),
 * BENCH_BATCH_WORKERS (2), BENCH_BATCH_CONCURRENCY (256 jobs per worker), BENCH_BATCH_DIMS (64), BENCH_BATCH_WINDOW_MS (50: the coalescing window),
 * BENCH_BATCH_SCENARIOS, BENCH_BATCH_SINGLE_TEXTS, BENCH_DIST (a build other than dist/), REDIS_URL.
 */

const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const IORedis = require('ioredis');
const { ROOT, posNum, log, sleep, children, prefixes, startChild, waitForLine, stopChild, freePort, deletePrefixKeys, runBench, gatewayEnv, startApi } = require('../support');

const DIST = process.env.BENCH_DIST || path.join(ROOT, 'dist');
const OUT_DIR = path.join(__dirname, 'out');
const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const TEXTS = Math.floor(posNum(process.env.BENCH_BATCH_TEXTS, 100_000));
const SINGLE_TEXTS = Math.floor(posNum(process.env.BENCH_BATCH_SINGLE_TEXTS, 2_000));
const RPM = posNum(process.env.BENCH_BATCH_RPM, 1_200);
const TPM = posNum(process.env.BENCH_BATCH_TPM, 120_000);
const WORKERS = Math.floor(posNum(process.env.BENCH_BATCH_WORKERS, 2));
const CONCURRENCY = Math.floor(posNum(process.env.BENCH_BATCH_CONCURRENCY, 256));
const DIMS = Math.floor(posNum(process.env.BENCH_BATCH_DIMS, 64));
const WINDOW_MS = Math.floor(posNum(process.env.BENCH_BATCH_WINDOW_MS, 50));
const SPLIT_REQUEST_TEXTS = 5_000;
const MAX_INPUTS = 2_048;
const SUBMIT_CONCURRENCY = 64;
const FAKE_LATENCY_MS = 50;
const TARGET_RATIO = 0.9;
const MODEL = 'text-embedding-3-small';
const SCENARIOS = (process.env.BENCH_BATCH_SCENARIOS || 'coalesce,split,single').split(',').map((s) => s.trim()).filter(Boolean);

/** Every text the same length (8 tokens at 4 characters a token), distinct across the run. */
const text = (scenario, i) => `${scenario[0]}${String(i).padStart(7, '0')} embedding batch benchmark text`.slice(0, 32);

async function runScenario(redis, scenario) {
  const prefix = `benchbt-${crypto.randomBytes(4).toString('hex')}`;
  prefixes.add(prefix);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-batch-'));
  const limitsFile = path.join(tmp, 'limits.yaml');
  fs.writeFileSync(limitsFile, `providers:\n  openai:\n    rpm: ${RPM}\n    tpm: ${TPM}\n`);
  const texts = scenario === 'single' ? SINGLE_TEXTS : TEXTS;
  const started = { children: [] };
  try {
    const fakePort = await freePort();
    const fake = startChild('fake', [path.join(DIST, 'test/fakes/openai-fake.js'), '--port', String(fakePort), '--no-record', '--latency', String(FAKE_LATENCY_MS), '--rpm', String(RPM), '--tpm', String(TPM)], {});
    started.children.push(fake);
    const fakeUrl = (await waitForLine(fake, /^OPENAI_FAKE_URL=/, 15_000)).slice('OPENAI_FAKE_URL='.length).trim();
    const port = await freePort();
    const env = gatewayEnv({
      port,
      prefix,
      fakeUrl,
      WORKER_CONCURRENCY: String(CONCURRENCY),
      WORKER_SHUTDOWN_GRACE_MS: '2000',
      RATE_LIMITS_FILE: limitsFile,
      QUEUE_MAX_BACKLOG: '0',
      COALESCE_WINDOW_MS: scenario === 'coalesce' || scenario === 'batch' ? String(WINDOW_MS) : '0',
      EMBEDDING_CACHE_TTL_SECONDS: '0',
    });
    const { api, url } = await startApi(DIST, env);
    started.children.push(api);
    for (let i = 0; i < WORKERS; i++) started.children.push(startChild(`worker${i + 1}`, [path.join(DIST, 'apps/worker/src/main.js')], env));
    await sleep(3_000); // workers connected

    if (scenario === 'batch') return await runBatch({ redis, scenario, texts, url, fakeUrl, started, prefix });
    const bodies = [];
    if (scenario === 'split') {
      for (let i = 0; i < texts; i += SPLIT_REQUEST_TEXTS) {
        bodies.push({ provider: 'openai', model: MODEL, inputs: { texts: Array.from({ length: Math.min(SPLIT_REQUEST_TEXTS, texts - i) }, (_, k) => text(scenario, i + k)) }, parameters: { dimensions: DIMS } });
      }
    } else {
      for (let i = 0; i < texts; i++) bodies.push({ provider: 'openai', model: MODEL, inputs: { text: text(scenario, i) }, parameters: { dimensions: DIMS } });
    }
    const memory = await sampleMemory(redis);

    log(`${scenario}: ${texts} texts in ${bodies.length} requests (prefix ${prefix}); limits ${RPM} RPM, ${TPM} TPM; ${WORKERS} workers x ${CONCURRENCY}`);
    const t0 = Date.now();
    const jobIds = [];
    let refused = 0;
    let next = 0;
    await Promise.all(
      Array.from({ length: SUBMIT_CONCURRENCY }, async () => {
        while (next < bodies.length) {
          const i = next++;
          const r = await fetch(`${url}/v1/inference`, { method: 'POST', headers: { 'content-type': 'application/json', prefer: 'respond-async' }, body: JSON.stringify(bodies[i]) });
          const body = await r.json().catch(() => ({}));
          if (r.status === 202) jobIds[i] = body.job_id;
          else refused++;
        }
      }),
    );
    const submittedMs = Date.now() - t0;
    log(`${scenario}: submitted in ${submittedMs} ms (${refused} not accepted)`);

    // Done when every top-level job has ended (a split job's children are not counted).
    const q = `${prefix}:openai`;
    let last = 0;
    let ended;
    for (;;) {
      ended = await countEnded(redis, q, jobIds, scenario);
      if (ended.completed + ended.failed >= jobIds.filter(Boolean).length) break;
      if (Date.now() - last > 15_000) {
        last = Date.now();
        log(`${scenario}: t=${Math.round((Date.now() - t0) / 1000)} s, ${ended.completed} completed, ${ended.failed} failed of ${jobIds.length}`);
      }
      await sleep(200);
    }
    const wallMs = Date.now() - t0;
    const mem = await memory.stop();

    const stats = await (await fetch(`${fakeUrl.replace(/\/v1$/, '')}/_fake/rate-limit`)).json();
    const jobHashBytes = await jobMemory(redis, q, jobIds);
    const prefixBytes = await prefixMemory(redis, prefix);
    const check = await verify(url, jobIds, bodies, scenario);
    const result = {
      ...againstLimits({ scenario, texts, requests: bodies.length, wallMs, submittedMs, stats, minCalls: scenario === 'single' ? texts : Math.ceil(texts / MAX_INPUTS) }),
      jobs: ended,
      results_checked: check,
      job_hash_bytes_avg: jobHashBytes,
      run_keys_mb_at_end: round(prefixBytes / 2 ** 20, 1),
      redis_used_memory_mb: mem,
      projected_100k_s: scenario === 'single' ? round((100_000 / RPM) * 60, 0) : undefined,
    };
    if (process.env.BENCH_BATCH_DEBUG) result.calls_at_ms = stats.admitted_at.map((t, i) => [t - t0, stats.admitted_tokens[i]]);
    for (const c of started.children.slice(2)) await stopChild(c);
    await stopChild(api);
    await stopChild(fake);
    return result;
  } finally {
    for (const c of started.children) await stopChild(c).catch(() => undefined);
    await deletePrefixKeys(redis, prefix).catch(() => 0);
    prefixes.delete(prefix);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * The `batch` scenario: every text as one line of a single NDJSON upload to
 * POST /v1/inference/batches (coalescing on), polled until the batch ends, then its results
 * streamed back and counted.
 */
async function runBatch({ redis, scenario, texts, url, fakeUrl, started, prefix }) {
  const lines = [];
  for (let i = 0; i < texts; i++) lines.push(JSON.stringify({ custom_id: `t${i}`, provider: 'openai', model: MODEL, inputs: { text: text(scenario, i) }, parameters: { dimensions: DIMS } }));
  const body = `${lines.join('\n')}\n`;
  const memory = await sampleMemory(redis);
  log(`batch: ${texts} lines, ${(body.length / 2 ** 20).toFixed(1)} MiB of NDJSON (prefix ${prefix}); limits ${RPM} RPM, ${TPM} TPM; ${WORKERS} workers x ${CONCURRENCY}`);
  const t0 = Date.now();
  const res = await fetch(`${url}/v1/inference/batches`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body });
  const created = await res.json();
  if (res.status !== 202) throw new Error(`batch submit: HTTP ${res.status} ${JSON.stringify(created).slice(0, 300)}`);
  const submittedMs = Date.now() - t0;
  let view;
  let last = 0;
  for (;;) {
    view = await (await fetch(`${url}/v1/inference/batches/${created.batch_id}`)).json();
    if (['COMPLETED', 'FAILED', 'CANCELED', 'EXPIRED'].includes(view.status)) break;
    if (Date.now() - last > 15_000) {
      last = Date.now();
      log(`batch: t=${Math.round((Date.now() - t0) / 1000)} s, ${JSON.stringify(view.request_counts)}`);
    }
    await sleep(500);
  }
  const wallMs = Date.now() - t0;
  const mem = await memory.stop();
  // Every result line back, in order.
  const text_ = await (await fetch(`${url}/v1/inference/batches/${created.batch_id}/results`)).text();
  const out = text_.split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const inOrder = out.every((l, i) => l.custom_id === `t${i}`);
  const wellFormed = out.filter((l) => l.response?.data?.embedding?.length === DIMS).length;
  const stats = await (await fetch(`${fakeUrl.replace(/\/v1$/, '')}/_fake/rate-limit`)).json();
  const prefixBytes = await prefixMemory(redis, prefix);
  for (const c of started.children.slice(2)) await stopChild(c);
  return {
    ...againstLimits({ scenario, texts, requests: 1, wallMs, submittedMs, stats, minCalls: Math.ceil(texts / MAX_INPUTS) }),
    batch: { status: view.status, request_counts: view.request_counts },
    results_checked: `${out.length} result lines, ${inOrder ? 'in custom_id order' : 'NOT in order'}, ${wellFormed} with a ${DIMS}-d embedding`,
    run_keys_mb_at_end: round(prefixBytes / 2 ** 20, 1),
    redis_used_memory_mb: mem,
  };
}

/** Completed and failed top-level jobs: ZSCOREs on the finished sets, in pipelines. */
async function countEnded(redis, q, jobIds, scenario) {
  if (scenario !== 'split') {
    const [completed, failed] = await Promise.all([redis.zcard(`${q}:completed`), redis.zcard(`${q}:failed`)]);
    return { completed, failed };
  }
  const ids = jobIds.filter(Boolean);
  const pipe = redis.pipeline();
  for (const id of ids) {
    pipe.zscore(`${q}:completed`, id);
    pipe.zscore(`${q}:failed`, id);
  }
  const res = await pipe.exec();
  let completed = 0;
  let failed = 0;
  for (let i = 0; i < ids.length; i++) {
    if (res[2 * i][1] !== null) completed++;
    else if (res[2 * i + 1][1] !== null) failed++;
  }
  return { completed, failed };
}

/** Reads a sample of results back through the API: the right count, dimensions and JSON numbers, in order. */
async function verify(url, jobIds, bodies, scenario) {
  const sample = scenario === 'split' ? jobIds.map((_, i) => i) : [0, 1, Math.floor(jobIds.length / 2), jobIds.length - 1];
  let ok = 0;
  for (const i of sample) {
    const view = await (await fetch(`${url}/v1/inference/jobs/${jobIds[i]}`)).json();
    const data = view.result?.data;
    const want = bodies[i].inputs.texts?.length;
    const good = want ? data?.embeddings?.length === want && data.embeddings.every((e) => e.length === DIMS && typeof e[0] === 'number') : data?.embedding?.length === DIMS;
    if (good) ok++;
  }
  return `${ok}/${sample.length} sampled results well-formed`;
}

/** Average MEMORY USAGE of up to 200 finished top-level job hashes (what a result costs in Redis while it is kept). */
async function jobMemory(redis, q, jobIds) {
  const ids = jobIds.filter(Boolean);
  const step = Math.max(1, Math.floor(ids.length / 200));
  const sizes = [];
  for (let i = 0; i < ids.length; i += step) sizes.push(Number((await redis.call('MEMORY', 'USAGE', `${q}:${ids[i]}`, 'SAMPLES', '0')) ?? 0));
  return sizes.length ? Math.round(sizes.reduce((a, b) => a + b, 0) / sizes.length) : 0;
}

/** MEMORY USAGE summed over every key of the run's prefix: this run's own footprint, whatever else the shared Redis holds. */
async function prefixMemory(redis, prefix) {
  let cursor = '0';
  let total = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    const pipe = redis.pipeline();
    for (const k of keys) pipe.call('MEMORY', 'USAGE', k, 'SAMPLES', '0');
    for (const [, v] of await pipe.exec()) total += Number(v ?? 0);
  } while (cursor !== '0');
  return total;
}

/**
 * A run's time against the least the limits allow: the tokens the fake admitted at TPM, or
 * `minCalls` calls at RPM, whichever takes longer; and what went upstream.
 */
function againstLimits({ scenario, texts, requests, wallMs, submittedMs, stats, minCalls }) {
  const minByTokens = (stats.tokens_admitted / TPM) * 60_000;
  const minByCalls = (minCalls / RPM) * 60_000;
  const minMs = Math.max(minByTokens, minByCalls);
  return {
    scenario,
    texts,
    requests,
    wall_s: round(wallMs / 1000, 1),
    submit_s: round(submittedMs / 1000, 1),
    min_allowed_s: round(minMs / 1000, 1),
    binding: minByTokens >= minByCalls ? 'tpm' : 'rpm',
    ratio: round(minMs / wallMs, 3),
    upstream_calls: stats.admitted + stats.refused,
    upstream_429s: stats.refused,
    texts_per_call: round(texts / Math.max(1, stats.admitted), 1),
    tokens_admitted: stats.tokens_admitted,
  };
}

/** Samples Redis `used_memory` every 250 ms until stop(), which gives before/peak in MB. */
async function sampleMemory(redis) {
  const before = await usedMemory(redis);
  let peak = before;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      peak = Math.max(peak, await usedMemory(redis).catch(() => 0));
      await sleep(250);
    }
  })();
  return {
    async stop() {
      sampling = false;
      await sampler;
      return { before: round(before / 2 ** 20, 1), peak: round(peak / 2 ** 20, 1), peak_minus_before: round((peak - before) / 2 ** 20, 1) };
    },
  };
}

async function usedMemory(redis) {
  const info = await redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
}

function round(v, digits = 1) {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

async function main() {
  for (const f of ['apps/api/src/main.js', 'apps/worker/src/main.js', 'test/fakes/openai-fake.js']) {
    if (!fs.existsSync(path.join(DIST, f))) throw new Error(`dist/${f} is missing: run \`npm run build\` first (or \`npm run bench:batch\`)`);
  }
  const redis = new IORedis(REDIS_URL, { maxRetriesPerRequest: 3 });
  const results = [];
  try {
    for (const scenario of SCENARIOS) {
      const r = await runScenario(redis, scenario);
      log(JSON.stringify(r));
      results.push(r);
    }
  } finally {
    redis.disconnect();
  }
  const report = {
    date: new Date().toISOString(),
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version },
    settings: { rpm: RPM, tpm: TPM, coalesce_window_ms: WINDOW_MS, workers: WORKERS, worker_concurrency: CONCURRENCY, dims: DIMS, fake_latency_ms: FAKE_LATENCY_MS, headroom: 0.03, target_ratio: TARGET_RATIO },
    results,
  };
  fs.mkdirSync(OUT_DIR, { recursive: true });
  fs.writeFileSync(path.join(OUT_DIR, 'results.json'), JSON.stringify(report, null, 2));
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
}

runBench(main);
