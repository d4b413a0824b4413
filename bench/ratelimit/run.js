#!/usr/bin/env node
'use strict';
/**
 * Rate-limit benchmark: three worker processes share one provider limit through Redis.
 *
 *   npm run bench:ratelimit          (builds, then runs this file)
 *   node bench/ratelimit/run.js      (against an existing dist/)
 *
 * The OpenAI fake enforces 600 RPM and 200,000 TPM itself, counted the strictest way (a
 * sliding 60 s window; OpenAI-style admission tokens: prompt estimate + max_tokens) and answers
 * 429 past them. The gateway is given the same numbers in a limits file (default headroom 3 %).
 * One API process takes a backlog of mixed chat and embedding jobs at once; three workers drain
 * it. Measured at the fake: requests and tokens admitted per minute, as a fraction of the
 * limit, and the number of 429s the fake answered.
 *
 * Knobs (env): BENCH_RL_MIX (tokens | requests, below), BENCH_RL_DURATION_S (default 150: a first minute with the start-up burst, then
 * steady state), BENCH_RL_RPM (600), BENCH_RL_TPM (200000), BENCH_RL_JOBS (default: enough
 * to keep the limit busy for the whole run), REDIS_URL.
 */

const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const IORedis = require('ioredis');
const { ROOT, posNum, log, sleep, prefixes, startChild, waitForLine, stopChild, freePort, deletePrefixKeys, runBench, gatewayEnv, startApi } = require('../support');

const DIST = path.join(ROOT, 'dist');
const OUT_DIR = path.join(__dirname, 'out');
const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const DURATION_S = posNum(process.env.BENCH_RL_DURATION_S, 150);
const RPM = posNum(process.env.BENCH_RL_RPM, 600);
const TPM = posNum(process.env.BENCH_RL_TPM, 200_000);
const WORKERS = 3;
const TARGET_FRACTION = 0.95;
const FAKE_LATENCY_MS = 50;

/**
 * BENCH_RL_MIX=tokens (default): short and long chats with different max_tokens, single and
 * batched embeddings (~390 tokens a job: the token limit binds). BENCH_RL_MIX=requests: short
 * chats and embeddings (~40 tokens a job: the request limit binds).
 */
const MIX = process.env.BENCH_RL_MIX === 'requests' ? 'requests' : 'tokens';

function job(i) {
  const words = (n) => Array.from({ length: n }, (_, k) => `word${(i * 7 + k) % 97}`).join(' ');
  if (MIX === 'requests') {
    return i % 2
      ? { provider: 'openai', model: 'gpt-4o-mini', inputs: { prompts: [words(8)] }, parameters: { max_tokens: 20 } }
      : { provider: 'openai', model: 'text-embedding-3-small', inputs: { text: words(20) } };
  }
  switch (i % 4) {
    case 0:
      return { provider: 'openai', model: 'gpt-4o-mini', inputs: { prompts: [words(40)] }, parameters: { max_tokens: 150 } };
    case 1:
      return { provider: 'openai', model: 'gpt-4o-mini', inputs: { prompts: [words(200)], system: 'Answer briefly.' }, parameters: { max_tokens: 400 } };
    case 2:
      return { provider: 'openai', model: 'text-embedding-3-small', inputs: { text: words(60) } };
    default:
      return { provider: 'openai', model: 'text-embedding-3-small', inputs: { texts: Array.from({ length: 8 }, (_, k) => words(20 + k * 5)) } };
  }
}

async function main() {
  for (const f of ['apps/api/src/main.js', 'apps/worker/src/main.js', 'test/fakes/openai-fake.js']) {
    if (!fs.existsSync(path.join(DIST, f))) throw new Error(`dist/${f} is missing: run \`npm run build\` first (or \`npm run bench:ratelimit\`)`);
  }
  const redis = new IORedis(REDIS_URL, { maxRetriesPerRequest: 3 });
  const prefix = `benchrl-${crypto.randomBytes(4).toString('hex')}`;
  prefixes.add(prefix);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-rl-'));
  const limitsFile = path.join(tmp, 'limits.yaml');
  fs.writeFileSync(limitsFile, `providers:\n  openai:\n    rpm: ${RPM}\n    tpm: ${TPM}\n`);

  try {
    const fakePort = await freePort();
    const fake = startChild('fake', [path.join(DIST, 'test/fakes/openai-fake.js'), '--port', String(fakePort), '--no-record', '--latency', String(FAKE_LATENCY_MS), '--rpm', String(RPM), '--tpm', String(TPM)], {});
    const fakeUrl = (await waitForLine(fake, /^OPENAI_FAKE_URL=/, 15_000)).slice('OPENAI_FAKE_URL='.length).trim();
    const port = await freePort();
    const env = gatewayEnv({ port, prefix, fakeUrl, WORKER_CONCURRENCY: '32', WORKER_SHUTDOWN_GRACE_MS: '2000', RATE_LIMITS_FILE: limitsFile });
    const { api, url } = await startApi(DIST, env);
    const workers = Array.from({ length: WORKERS }, (_, i) => startChild(`worker${i + 1}`, [path.join(DIST, 'apps/worker/src/main.js')], env));

    // Enough work for the whole run at the limit, and a third more.
    const jobs = Math.ceil(posNum(process.env.BENCH_RL_JOBS, (RPM * DURATION_S * 4) / 3 / 60));
    log(`submitting ${jobs} jobs (prefix ${prefix}); limits ${RPM} RPM, ${TPM} TPM; ${WORKERS} workers`);
    const started = Date.now();
    let refusedByApi = 0;
    for (let i = 0; i < jobs; i += 50) {
      const batch = [];
      for (let k = i; k < Math.min(jobs, i + 50); k++) {
        batch.push(
          fetch(`${url}/v1/inference`, { method: 'POST', headers: { 'content-type': 'application/json', prefer: 'respond-async' }, body: JSON.stringify(job(k)) }).then(async (r) => {
            await r.text();
            if (r.status !== 202) refusedByApi++;
          }),
        );
      }
      await Promise.all(batch);
    }
    log(`backlog submitted in ${Date.now() - started} ms (${refusedByApi} not accepted); measuring for ${DURATION_S} s`);
    const samples = [];
    while (Date.now() - started < DURATION_S * 1000) {
      await sleep(10_000);
      const s = await (await fetch(`${fakeUrl.replace(/\/v1$/, '')}/_fake/rate-limit`)).json();
      samples.push({ t_s: Math.round((Date.now() - started) / 1000), admitted: s.admitted, refused: s.refused, tokens: s.tokens_admitted });
      log(`t=${samples.at(-1).t_s}s admitted ${s.admitted}, 429s ${s.refused}, tokens ${s.tokens_admitted}`);
    }
    const stats = await (await fetch(`${fakeUrl.replace(/\/v1$/, '')}/_fake/rate-limit`)).json();
    const counts = await countStates(redis, prefix);

    // Steady state: every full 60 s window after the first minute (the first holds the burst).
    const at = stats.admitted_at;
    const end = started + DURATION_S * 1000;
    const windows = [];
    const tokenWindows = [];
    for (let from = started + 60_000; from + 60_000 <= end; from += 5_000) {
      let n = 0;
      let tokens = 0;
      at.forEach((t, i) => {
        if (t >= from && t < from + 60_000) {
          n++;
          tokens += stats.admitted_tokens[i];
        }
      });
      windows.push(n);
      tokenWindows.push(tokens);
    }
    // The busiest 60 s at the fake, anywhere in the run (what a provider would hold us to).
    let busiest = 0;
    let busiestTokens = 0;
    for (let i = 0, lo = 0, tokens = 0; i < at.length; i++) {
      tokens += stats.admitted_tokens[i];
      while (at[lo] <= at[i] - 60_000) tokens -= stats.admitted_tokens[lo++];
      busiest = Math.max(busiest, i - lo + 1);
      busiestTokens = Math.max(busiestTokens, tokens);
    }
    const overall = at.filter((t) => t >= started && t < end).length / (DURATION_S / 60);
    const steadyMedian = median(windows);
    const steadyTokens = median(tokenWindows);
    const result = {
      date: new Date().toISOString(),
      machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model, node: process.version },
      settings: { mix: MIX, rpm: RPM, tpm: TPM, workers: WORKERS, duration_s: DURATION_S, jobs, fake_latency_ms: FAKE_LATENCY_MS, headroom: 0.03 },
      fake: { admitted: stats.admitted, refused_429: stats.refused, refusals: stats.refusals.map((r) => ({ t_ms: r.at - started, cap: r.cap })), tokens_admitted: stats.tokens_admitted },
      requests_per_min: { overall: round(overall), steady_windows_median: steadyMedian, steady_windows_min: Math.min(...windows), steady_windows_max: Math.max(...windows), busiest_60s: busiest },
      tokens_per_min: { steady_windows_median: steadyTokens, steady_windows_min: Math.min(...tokenWindows), steady_windows_max: Math.max(...tokenWindows), busiest_60s: busiestTokens },
      fraction_of_rpm: { overall: round(overall / RPM, 3), steady_median: round(steadyMedian / RPM, 3) },
      fraction_of_tpm: { steady_median: round(steadyTokens / TPM, 3) },
      queue_at_end: counts,
      samples,
    };
    const binding = Math.max(result.fraction_of_rpm.steady_median, result.fraction_of_tpm.steady_median);
    result.target = { fraction: TARGET_FRACTION, binding_fraction: binding, upstream_429s: stats.refused, met: binding >= TARGET_FRACTION && stats.refused === 0 };
    fs.mkdirSync(OUT_DIR, { recursive: true });
    fs.writeFileSync(path.join(OUT_DIR, `results-${MIX}.json`), JSON.stringify(result, null, 2));
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    for (const w of workers) await stopChild(w);
    await stopChild(api);
    await stopChild(fake);
  } finally {
    for (const p of prefixes) await deletePrefixKeys(redis, p).catch(() => 0);
    redis.disconnect();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

async function countStates(redis, prefix) {
  const q = `${prefix}:openai`;
  const [wait, delayed, active, completed, failed] = await Promise.all([
    redis.llen(`${q}:wait`),
    redis.zcard(`${q}:delayed`),
    redis.llen(`${q}:active`),
    redis.zcard(`${q}:completed`),
    redis.zcard(`${q}:failed`),
  ]);
  return { wait, delayed, active, completed, failed };
}

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : 0;
}

function round(v, digits = 1) {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

runBench(main);
