#!/usr/bin/env node
'use strict';
/**
 * Overhead benchmark: what the gateway (API -> Redis/BullMQ -> worker -> provider) adds to a
 * direct OpenAI SDK call, against the OpenAI fake.
 *
 *   npm run bench:overhead          (builds, then runs this file)
 *   node bench/overhead/run.js      (against an existing dist/)
 *
 * Scenario A (fake latency 20 ms): chat and embedding at concurrency 1 and 64,
 *   direct  = OpenAI SDK from this process, closed loop of `c` async workers;
 *   gateway = autocannon against POST /v1/inference (sync), `c` connections, pipelining 1.
 *   added latency = gateway percentile - direct percentile.
 * Scenario B (fake latency 0): gateway sync throughput, chat, concurrency 64 (plus the direct
 *   SDK figure at the same concurrency, for reference).
 *
 * Plain CommonJS, no build step of its own. Results: Markdown on stdout and
 * bench/overhead/out/results.json.
 *
 * Knobs (env): BENCH_DURATION_S (default 8), BENCH_WARMUP_S (default 2),
 * BENCH_THROUGHPUT_DURATION_S (default 10), REDIS_URL (default redis://127.0.0.1:6379).
 * For A/B runs of two builds: BENCH_DIST (a build to run instead of dist/; it must sit inside
 * the repository, e.g. tmp/ab-base/dist, so that it finds node_modules), BENCH_CELLS (which
 * cells of A to run, e.g. `chat:1` or `chat:1,embedding:1`; default all) and
 * BENCH_SKIP_THROUGHPUT=1 (no scenario B), BENCH_THROUGHPUT_ONLY=1 (scenario B alone, gateway and
 * direct, no targets verdict).
 */

const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const IORedis = require('ioredis');
const { OpenAI } = require('openai');
const autocannon = require('autocannon');

const { ROOT, posNum, log, sleep, children, prefixes, startChild, waitForLine, stopChild, killAllSync, freePort, deletePrefixKeys, setShuttingDown } = require('../support');
const DIST = process.env.BENCH_DIST ? path.resolve(ROOT, process.env.BENCH_DIST) : path.join(ROOT, 'dist');
const OUT_DIR = path.join(__dirname, 'out');
const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const DURATION_S = posNum(process.env.BENCH_DURATION_S, 8);
const WARMUP_S = posNum(process.env.BENCH_WARMUP_S, 2);
const THROUGHPUT_DURATION_S = posNum(process.env.BENCH_THROUGHPUT_DURATION_S, 10);
const CONCURRENCIES = [1, 64];
/** `workload:concurrency` cells of scenario A to run (BENCH_CELLS), or null for all. */
const CELLS = process.env.BENCH_CELLS ? new Set(process.env.BENCH_CELLS.split(',').map((c) => c.trim())) : null;
const SKIP_THROUGHPUT = process.env.BENCH_SKIP_THROUGHPUT === '1';
const THROUGHPUT_ONLY = process.env.BENCH_THROUGHPUT_ONLY === '1';
/** Before each cell: wait up to this long for a second with at most QUIET_BUSY_PERCENT busy. */
const QUIET_MAX_WAIT_S = posNum(process.env.BENCH_QUIET_MAX_WAIT_S, 15);
const QUIET_BUSY_PERCENT = 25;
const WORKER_CONCURRENCY = 128;
const TARGET_ADDED_P50_MS = 3;
const TARGET_THROUGHPUT_RPS = 1000;

const WORKLOADS = {
  chat: {
    gatewayBody: { provider: 'openai', model: 'gpt-4o-mini', inputs: { prompts: ['What is AI?'] }, parameters: { max_tokens: 50 } },
    direct: (client) =>
      client.chat.completions.create({
        model: 'gpt-4o-mini',
        messages: [{ role: 'user', content: [{ type: 'text', text: 'What is AI?' }] }],
        max_tokens: 50,
      }),
  },
  embedding: {
    gatewayBody: { provider: 'openai', model: 'text-embedding-3-small', inputs: { text: 'machine learning' } },
    direct: (client) => client.embeddings.create({ model: 'text-embedding-3-small', input: 'machine learning' }),
  },
};

async function startFake(latencyMs) {
  const port = await freePort();
  const fake = startChild('fake', [path.join(DIST, 'test/fakes/openai-fake.js'), '--port', String(port), '--latency', String(latencyMs), '--no-record'], {});
  const line = await waitForLine(fake, /^OPENAI_FAKE_URL=/, 15_000);
  fake.url = line.slice('OPENAI_FAKE_URL='.length).trim();
  return fake;
}

function gatewayEnv(prefix, fakeUrl, port) {
  return {
    PORT: String(port),
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    OPENAI_API_KEY: 'bench',
    OPENAI_BASE_URL: fakeUrl,
    LOG_LEVEL: 'warn',
    SYNC_TIMEOUT_MS: '30000',
    API_KEYS: '',
    WORKER_CONCURRENCY: String(WORKER_CONCURRENCY),
    WORKER_QUEUES: 'openai',
    RATE_LIMITS_FILE: path.join(__dirname, 'limits.yaml'),
    WORKER_METRICS_PORT: '0',
    // Short, so that stopping the worker at the end does not take 25 s.
    WORKER_SHUTDOWN_GRACE_MS: '2000',
  };
}

/**
 * Fake + API + one worker on a fresh queue prefix. Ready = /health answers 200 and one chat
 * request goes through end to end with a 200. (With LOG_LEVEL=warn the worker does not print
 * its `serving ...` line: that is a `log`-level message. The end-to-end probe is the stricter
 * test anyway: it proves the worker consumes the queue and reaches the fake.)
 */
async function startStack(latencyMs) {
  const prefix = `bench-${crypto.randomBytes(4).toString('hex')}`;
  prefixes.add(prefix);
  const fake = await startFake(latencyMs);
  const port = await freePort();
  const env = gatewayEnv(prefix, fake.url, port);
  const api = startChild('api', [path.join(DIST, 'apps/api/src/main.js')], env);
  const worker = startChild('worker', [path.join(DIST, 'apps/worker/src/main.js')], env);
  const url = `http://127.0.0.1:${port}`;

  const deadline = Date.now() + 30_000;
  for (;;) {
    if (api.exited) throw new Error(`api exited during start-up:\n${api.output.slice(-20).join('\n')}`);
    try {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) });
      await res.text();
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error('api /health did not answer 200 within 30 s');
    await sleep(100);
  }

  const workerExit = new Promise((_, reject) =>
    worker.once('exit', () => reject(new Error(`worker exited during start-up:\n${worker.output.slice(-20).join('\n')}`))),
  );
  workerExit.catch(() => undefined);
  const probe = (async () => {
    const res = await fetch(`${url}/v1/inference`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(WORKLOADS.chat.gatewayBody),
      signal: AbortSignal.timeout(30_000),
    });
    const body = await res.json();
    if (res.status !== 200 || !body || body.data === undefined) {
      throw new Error(`readiness probe: HTTP ${res.status} ${JSON.stringify(body).slice(0, 300)}`);
    }
    return body;
  })();
  await Promise.race([probe, workerExit]);
  log(`stack up: prefix ${prefix}, fake ${fake.url} (latency ${latencyMs} ms), api ${url}, worker pid ${worker.pid}`);
  return { prefix, fake, api, worker, url, latencyMs };
}

async function stopStack(stack) {
  if (!stack) return;
  // Worker first (it drains in-flight jobs), then the API, then the fake.
  await stopChild(stack.worker);
  await stopChild(stack.api);
  await stopChild(stack.fake);
}

// ------------------------------------------------------------------------------------------
// CPU accounting: per-process CPU time over each measured window, from /proc (Linux only).

let CLK_TCK = 100;
try {
  CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  // keep 100
}

function procCpuMs(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[11] = utime, fields[12] = stime (fields 14 and 15 of proc(5), counted from state)
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
  } catch {
    return null;
  }
}

/** Machine-wide busy CPU time (all cores, ms) and steal, from /proc/stat. */
function machineCpuMs() {
  try {
    const cpu = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal ...
    const busy = cpu[0] + cpu[1] + cpu[2] + cpu[5] + cpu[6];
    return { busy: (busy * 1000) / CLK_TCK, steal: ((cpu[7] || 0) * 1000) / CLK_TCK };
  } catch {
    return null;
  }
}

/** CPU ms of every process on the machine (pid -> { ms, comm }), to name the other load. */
function allProcsCpu() {
  const out = new Map();
  let entries = [];
  try {
    entries = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return out;
  }
  for (const pid of entries) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(pid, { ms: ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK, comm });
    } catch {
      // gone
    }
  }
  return out;
}

function cmdline(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ').slice(0, 120);
  } catch {
    return null;
  }
}

function cpuSnapshot(pids) {
  const snap = { at: process.hrtime.bigint(), procs: {}, machine: machineCpuMs(), all: allProcsCpu() };
  snap.pids = pids;
  for (const [name, pid] of Object.entries(pids)) {
    snap.procs[name] = name === 'bench' ? (() => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1000;
    })() : procCpuMs(pid);
  }
  return snap;
}

function pidsOf(snap) {
  return { ...snap.pids, bench: process.pid };
}

/** % of one core used by each process between two snapshots (200 % = both cores). */
function cpuPercent(a, b) {
  const wallMs = Number(b.at - a.at) / 1e6;
  const out = {};
  for (const name of Object.keys(a.procs)) {
    if (a.procs[name] == null || b.procs[name] == null) out[name] = null;
    else out[name] = round((100 * (b.procs[name] - a.procs[name])) / wallMs, 1);
  }
  if (a.machine && b.machine) {
    out.machine = round((100 * (b.machine.busy - a.machine.busy)) / wallMs, 1);
    out.steal = round((100 * (b.machine.steal - a.machine.steal)) / wallMs, 1);
    const ours = Object.keys(a.procs).reduce((sum, name) => sum + (out[name] ?? 0), 0);
    // Everything else on the machine (other users' builds/tests, the kernel's own threads).
    out.other = round(out.machine - ours, 1);
  }
  // The biggest other consumers (a process started during the window counts from zero;
  // one that ended before the window closed is missed, but shows in `other`).
  const mine = new Set(Object.values(pidsOf(a)).map(String));
  const top = [];
  for (const [pid, end] of b.all) {
    if (mine.has(pid)) continue;
    const startMs = a.all.get(pid)?.ms ?? 0;
    const pct = (100 * (end.ms - startMs)) / wallMs;
    if (pct >= 5) top.push({ pid: Number(pid), comm: end.comm, cmd: cmdline(pid), cpu_percent: round(pct, 1) });
  }
  out.top_other = top.sort((x, y) => y.cpu_percent - x.cpu_percent).slice(0, 3);
  return out;
}

/**
 * The machine is shared: before each pair of measurements, wait (up to QUIET_MAX_WAIT_S) for
 * a second in which the machine is mostly idle, so that other people's builds and tests do not
 * land in the window. Whatever happens, the CPU table records what ran during the window.
 */
async function waitForQuiet(label) {
  const limitMs = QUIET_MAX_WAIT_S * 1000;
  const t0 = Date.now();
  for (;;) {
    const a = machineCpuMs();
    await sleep(1000);
    const b = machineCpuMs();
    if (!a || !b) return { waited_s: 0, busy_percent: null };
    const busy = round((100 * (b.busy - a.busy)) / 1000, 1);
    const waited = round((Date.now() - t0) / 1000, 1);
    if (busy <= QUIET_BUSY_PERCENT) return { waited_s: waited, busy_percent: busy, quiet: true };
    if (Date.now() - t0 >= limitMs) {
      log(`WARNING: ${label}: the machine is still busy (${busy} % of one core used by other processes) after ${waited} s; measuring anyway`);
      return { waited_s: waited, busy_percent: busy, quiet: false };
    }
  }
}

// ------------------------------------------------------------------------------------------
// Load generation

function summarize(latencies) {
  const s = Float64Array.from(latencies).sort();
  const n = s.length;
  const pct = (q) => (n === 0 ? null : s[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))]);
  let sum = 0;
  for (const v of s) sum += v;
  return {
    samples: n,
    min: n ? round(s[0], 3) : null,
    p50: round(pct(0.5), 3),
    p90: round(pct(0.9), 3),
    p99: round(pct(0.99), 3),
    max: n ? round(s[n - 1], 3) : null,
    mean: n ? round(sum / n, 3) : null,
  };
}

function round(v, digits) {
  if (v == null || !Number.isFinite(v)) return v ?? null;
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

/** Closed loop: `concurrency` async workers, each awaiting one SDK call at a time. */
async function directLoop(call, concurrency, durationS) {
  const latencies = [];
  let errors = 0;
  let firstError;
  const start = process.hrtime.bigint();
  const end = start + BigInt(Math.round(durationS * 1e9));
  const worker = async () => {
    while (process.hrtime.bigint() < end) {
      const t0 = process.hrtime.bigint();
      try {
        await call();
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
      } catch (err) {
        errors++;
        firstError ??= err;
        await sleep(5);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsedS = Number(process.hrtime.bigint() - start) / 1e9;
  return { latencies, errors, firstError, elapsedS };
}

async function runDirect(fakeUrl, workload, concurrency, durationS, pids) {
  const client = new OpenAI({ baseURL: fakeUrl, apiKey: 'x', maxRetries: 0 });
  const call = () => WORKLOADS[workload].direct(client);
  await directLoop(call, concurrency, WARMUP_S);
  const before = cpuSnapshot(pids);
  const { latencies, errors, firstError, elapsedS } = await directLoop(call, concurrency, durationS);
  const cpu = cpuPercent(before, cpuSnapshot(pids));
  if (errors > 0) log(`WARNING: direct ${workload} c=${concurrency}: ${errors} errors (first: ${firstError && firstError.message})`);
  return {
    method: 'openai SDK from the bench process, closed loop',
    duration_s: round(elapsedS, 3),
    requests: latencies.length,
    errors,
    requests_per_s: round(latencies.length / elapsedS, 1),
    latency_ms: summarize(latencies),
    cpu_percent: cpu,
  };
}

function cannon(opts, exact) {
  return new Promise((resolve, reject) => {
    const instance = autocannon(opts, (err, result) => (err ? reject(err) : resolve(result)));
    if (exact) {
      instance.on('response', (_client, statusCode, _bytes, responseTime) => {
        if (statusCode >= 200 && statusCode < 300) exact.push(responseTime);
      });
    }
  });
}

async function runGateway(url, workload, concurrency, durationS, pids) {
  const base = {
    url: `${url}/v1/inference`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(WORKLOADS[workload].gatewayBody),
    connections: concurrency,
    pipelining: 1,
    timeout: 30,
  };
  await cannon({ ...base, duration: WARMUP_S });
  const exact = [];
  const before = cpuSnapshot(pids);
  const windowStart = Date.now();
  const r = await cannon({ ...base, duration: durationS }, exact);
  const windowEnd = Date.now();
  const cpu = cpuPercent(before, cpuSnapshot(pids));
  const non2xx = r.non2xx ?? 0;
  const problems = non2xx + (r.errors ?? 0) + (r.timeouts ?? 0);
  if (problems > 0) {
    log(`WARNING: gateway ${workload} c=${concurrency}: non-2xx ${non2xx}, errors ${r.errors}, timeouts ${r.timeouts}, status codes ${JSON.stringify(r.statusCodeStats)}`);
  }
  return {
    method: 'autocannon against POST /v1/inference (sync)',
    duration_s: r.duration,
    requests: r.requests.total,
    '2xx': r['2xx'],
    non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    status_codes: r.statusCodeStats,
    requests_per_s: r.requests.average,
    // autocannon's own histogram: whole milliseconds (values are truncated), mean is exact.
    latency_ms: {
      p50: r.latency.p50,
      p90: r.latency.p90,
      p99: r.latency.p99,
      max: r.latency.max,
      mean: r.latency.average,
    },
    // The same responses' times as autocannon reports them per response, at µs resolution.
    latency_ms_exact: summarize(exact),
    cpu_percent: cpu,
    window: { start: windowStart, end: windowEnd },
  };
}

/**
 * Where a gateway request's time goes, from the BullMQ job hashes of the measured window
 * (whole-ms timestamps set by BullMQ): queue wait = processedOn - timestamp (enqueued until a
 * worker took it), in worker = finishedOn - processedOn (includes the provider call),
 * enqueue->finished = finishedOn - timestamp. The rest of the client-seen latency is HTTP,
 * validation, the enqueue round trip and the completion notice back to the API.
 */
async function jobBreakdown(prefix, gateway) {
  const { start, end } = gateway.window;
  const keys = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}:openai:openai-*`, 'COUNT', 2000);
    cursor = next;
    for (const k of batch) if (!k.slice(`${prefix}:openai:`.length).includes(':')) keys.push(k);
  } while (cursor !== '0');
  const wait = [];
  const inWorker = [];
  const total = [];
  for (let i = 0; i < keys.length; i += 1000) {
    const pipeline = redis.pipeline();
    for (const k of keys.slice(i, i + 1000)) pipeline.hmget(k, 'timestamp', 'processedOn', 'finishedOn');
    for (const [err, fields] of (await pipeline.exec()) ?? []) {
      if (err || !fields) continue;
      const [ts, processed, finished] = fields.map(Number);
      if (!ts || !processed || !finished || ts < start || ts > end) continue;
      wait.push(processed - ts);
      inWorker.push(finished - processed);
      total.push(finished - ts);
    }
  }
  const pick = (x) => {
    const s = summarize(x);
    return { p50: s.p50, p99: s.p99, mean: s.mean };
  };
  return { jobs: total.length, queue_wait_ms: pick(wait), in_worker_ms: pick(inWorker), enqueue_to_finished_ms: pick(total) };
}

// ------------------------------------------------------------------------------------------
// Reporting

async function machineInfo(redis) {
  const info = await redis.info('server');
  const field = (k) => (info.match(new RegExp(`^${k}:(.*)$`, 'm')) || [])[1]?.trim() ?? null;
  const cpus = os.cpus();
  return {
    cpu_model: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    total_memory_gib: round(os.totalmem() / 1024 ** 3, 1),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    redis: field('redis_version'),
    redis_pid: Number(field('process_id')) || null,
    date: new Date().toISOString(),
  };
}

const fmt = (v, d = 2) => (v == null ? 'n/a' : typeof v === 'number' ? (Object.is(Number(v.toFixed(d)), -0) ? (0).toFixed(d) : v.toFixed(d)) : String(v));
const signed = (v, d = 2) => (v == null ? 'n/a' : `${v >= 0 ? '+' : ''}${v.toFixed(d)}`);

function markdown(results) {
  const m = results.machine;
  const lines = [];
  lines.push(`# Gateway overhead benchmark`);
  lines.push('');
  lines.push(`Machine: ${m.cpu_model}, ${m.cores} cores, ${m.total_memory_gib} GiB RAM, ${m.os}, Node ${m.node}, Redis ${m.redis}, ${m.date}`);
  lines.push('');
  lines.push(
    `Settings: warm-up ${results.settings.warmup_s} s, measured ${results.settings.duration_s} s per cell (throughput: ${results.settings.throughput_duration_s} s), ` +
      `1 API + 1 worker (WORKER_CONCURRENCY=${results.settings.worker_concurrency}), load generator, fake, API, worker and Redis on the same machine.`,
  );
  lines.push('');
  lines.push(`## A. Added latency (fake provider latency ${results.latency20.fake_latency_ms} ms)`);
  lines.push('');
  lines.push('Direct = OpenAI SDK from the bench process (hrtime, µs resolution). Gateway = autocannon (its histogram reports whole ms). Added = gateway − direct.');
  lines.push('');
  lines.push('| workload | c | direct p50 ms | direct p99 ms | direct req/s | gateway p50 ms | gateway p99 ms | gateway req/s | added p50 ms | added p99 ms | gateway non-2xx |');
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const row of results.latency20.rows) {
    lines.push(
      `| ${row.workload} | ${row.concurrency} | ${fmt(row.direct.latency_ms.p50)} | ${fmt(row.direct.latency_ms.p99)} | ${fmt(row.direct.requests_per_s, 1)} | ` +
        `${fmt(row.gateway.latency_ms.p50, 0)} | ${fmt(row.gateway.latency_ms.p99, 0)} | ${fmt(row.gateway.requests_per_s, 1)} | ` +
        `${signed(row.added_ms.p50)} | ${signed(row.added_ms.p99)} | ${row.gateway.non2xx} |`,
    );
  }
  lines.push('');
  lines.push('Same gateway runs, percentiles computed from every response time autocannon measured (sub-millisecond, not truncated):');
  lines.push('');
  lines.push('| workload | c | gateway p50 ms | gateway p99 ms | gateway mean ms | added p50 ms | added p99 ms | samples |');
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|');
  for (const row of results.latency20.rows) {
    const e = row.gateway.latency_ms_exact;
    lines.push(
      `| ${row.workload} | ${row.concurrency} | ${fmt(e.p50)} | ${fmt(e.p99)} | ${fmt(e.mean)} | ${signed(row.added_ms_exact.p50)} | ${signed(row.added_ms_exact.p99)} | ${e.samples} |`,
    );
  }
  lines.push('');
  lines.push('Where the gateway time goes (from the BullMQ job hashes of each measured window; whole-ms timestamps; p50 / p99):');
  lines.push('');
  lines.push('| run | jobs | queue wait (added→active) | in worker (active→finished, incl. provider) | added→finished | client-seen p50 − added→finished p50 |');
  lines.push('|---|---:|---:|---:|---:|---:|');
  const bdRow = (label, g) => {
    const b = g.breakdown;
    if (!b) return `| ${label} | n/a | | | | |`;
    const rest = b.enqueue_to_finished_ms.p50 == null ? null : g.latency_ms_exact.p50 - b.enqueue_to_finished_ms.p50;
    return (
      `| ${label} | ${b.jobs} | ${fmt(b.queue_wait_ms.p50, 0)} / ${fmt(b.queue_wait_ms.p99, 0)} | ${fmt(b.in_worker_ms.p50, 0)} / ${fmt(b.in_worker_ms.p99, 0)} | ` +
      `${fmt(b.enqueue_to_finished_ms.p50, 0)} / ${fmt(b.enqueue_to_finished_ms.p99, 0)} | ${fmt(rest)} |`
    );
  };
  for (const row of results.latency20.rows) lines.push(bdRow(`${row.workload} c=${row.concurrency}`, row.gateway));
  lines.push(bdRow(`throughput (latency 0) chat c=64`, results.latency0.gateway));
  lines.push('');
  lines.push('CPU use during each measured window (% of one core; 200 % = the whole machine). "other processes" = machine total − the five listed (someone else\'s build or tests); the idle gate runs before each direct/gateway pair:');
  lines.push('');
  lines.push('| run | bench (load gen) | fake | api | worker | redis | other processes | machine total | steal | idle gate before |');
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---|');
  const gate = (q) => (!q ? '' : q.quiet ? `idle after ${fmt(q.waited_s, 0)} s` : `still busy (${fmt(q.busy_percent, 0)} %) after ${fmt(q.waited_s, 0)} s`);
  const cpuRow = (label, c, q) =>
    `| ${label} | ${fmt(c.bench, 0)} | ${fmt(c.fake, 0)} | ${fmt(c.api, 0)} | ${fmt(c.worker, 0)} | ${fmt(c.redis, 0)} | ${fmt(c.other, 0)} | ${fmt(c.machine, 0)} | ${fmt(c.steal, 0)} | ${gate(q)} |`;
  for (const row of results.latency20.rows) {
    lines.push(cpuRow(`direct ${row.workload} c=${row.concurrency}`, row.direct.cpu_percent, row.quiet_before));
    lines.push(cpuRow(`gateway ${row.workload} c=${row.concurrency}`, row.gateway.cpu_percent));
  }
  lines.push('');
  const others = [];
  const addOthers = (label, c) => {
    if (c.top_other && c.top_other.length) others.push(`- ${label}: ${c.top_other.map((o) => `${o.comm} (pid ${o.pid}) ${fmt(o.cpu_percent, 0)} %`).join(', ')}`);
  };
  for (const row of results.latency20.rows) {
    addOthers(`direct ${row.workload} c=${row.concurrency}`, row.direct.cpu_percent);
    addOthers(`gateway ${row.workload} c=${row.concurrency}`, row.gateway.cpu_percent);
  }
  addOthers('throughput gateway', results.latency0.gateway.cpu_percent);
  addOthers('throughput direct', results.latency0.direct.cpu_percent);
  if (others.length) {
    lines.push('Other processes using ≥ 5 % of a core during a window (not part of the benchmark):');
    lines.push('');
    lines.push(...others);
    lines.push('');
  }
  const t = results.latency0;
  lines.push(`## B. Throughput (fake provider latency ${t.fake_latency_ms} ms), ${t.workload}, c=${t.concurrency}`);
  lines.push('');
  lines.push('| path | req/s | p50 ms | p99 ms | non-2xx | errors | requests |');
  lines.push('|---|---:|---:|---:|---:|---:|---:|');
  lines.push(
    `| gateway (autocannon) | ${fmt(t.gateway.requests_per_s, 1)} | ${fmt(t.gateway.latency_ms.p50, 0)} (exact ${fmt(t.gateway.latency_ms_exact.p50)}) | ` +
      `${fmt(t.gateway.latency_ms.p99, 0)} (exact ${fmt(t.gateway.latency_ms_exact.p99)}) | ${t.gateway.non2xx} | ${t.gateway.errors} | ${t.gateway.requests} |`,
  );
  lines.push(
    `| direct SDK (reference) | ${fmt(t.direct.requests_per_s, 1)} | ${fmt(t.direct.latency_ms.p50)} | ${fmt(t.direct.latency_ms.p99)} | n/a | ${t.direct.errors} | ${t.direct.requests} |`,
  );
  lines.push('');
  lines.push('CPU during the throughput runs (% of one core):');
  lines.push('');
  lines.push('| run | bench (load gen) | fake | api | worker | redis | other processes | machine total | steal | idle gate before |');
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---|');
  lines.push(cpuRow('gateway chat c=64, latency 0', t.gateway.cpu_percent, t.quiet_before));
  lines.push(cpuRow('direct chat c=64, latency 0', t.direct.cpu_percent, t.quiet_before_direct));
  lines.push('');
  lines.push('## Targets');
  lines.push('');
  const g = results.targets;
  lines.push(
    `- Added p50 at c=1 ≤ ${g.added_p50_c1_ms.target} ms: chat ${signed(g.added_p50_c1_ms.chat)} ms (exact ${signed(g.added_p50_c1_ms.chat_exact)}), ` +
      `embedding ${signed(g.added_p50_c1_ms.embedding)} ms (exact ${signed(g.added_p50_c1_ms.embedding_exact)}) -> ${g.added_p50_c1_ms.met ? 'met' : 'MISSED'}`,
  );
  lines.push(`- Gateway sync throughput at c=64, fake latency 0 ≥ ${g.throughput_rps.target} req/s: ${fmt(g.throughput_rps.measured, 1)} req/s -> ${g.throughput_rps.met ? 'met' : 'MISSED'}`);
  lines.push('');
  return lines.join('\n');
}

// ------------------------------------------------------------------------------------------

let redis;
let cleaningUp;

async function cleanup() {
  if (cleaningUp) return cleaningUp;
  cleaningUp = (async () => {
    await Promise.allSettled([...children].filter((c) => c.benchName === 'worker').map((c) => stopChild(c)));
    await Promise.allSettled([...children].map((c) => stopChild(c)));
    if (redis) {
      for (const prefix of prefixes) {
        try {
          const n = await deletePrefixKeys(redis, prefix);
          log(`deleted ${n} Redis keys of ${prefix}`);
        } catch (err) {
          log(`could not delete the keys of ${prefix}: ${err.message}`);
        }
      }
      redis.disconnect();
    }
  })();
  return cleaningUp;
}

process.on('exit', killAllSync);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    setShuttingDown(true);
    log(`${sig}: stopping children and cleaning up`);
    const hard = setTimeout(() => {
      killAllSync();
      process.exit(130);
    }, 15_000);
    hard.unref();
    cleanup().finally(() => process.exit(130));
  });
}

async function main() {
  for (const f of ['apps/api/src/main.js', 'apps/worker/src/main.js', 'test/fakes/openai-fake.js']) {
    if (!fs.existsSync(path.join(DIST, f))) throw new Error(`dist/${f} is missing: run \`npm run build\` first (or \`npm run bench:overhead\`)`);
  }
  redis = new IORedis(REDIS_URL, { maxRetriesPerRequest: 3, lazyConnect: true });
  await redis.connect();
  const machine = await machineInfo(redis);
  log(`machine: ${machine.cpu_model}, ${machine.cores} cores, Node ${machine.node}, Redis ${machine.redis}`);
  const settings = {
    warmup_s: WARMUP_S,
    duration_s: DURATION_S,
    throughput_duration_s: THROUGHPUT_DURATION_S,
    worker_concurrency: WORKER_CONCURRENCY,
    quiet_gate: `before each cell, wait up to ${QUIET_MAX_WAIT_S} s for 1 s with <= ${QUIET_BUSY_PERCENT} % machine CPU busy`,
    concurrencies: CONCURRENCIES,
    api: '1 process, LOG_LEVEL=warn, no API_KEYS',
    worker: `1 process, WORKER_CONCURRENCY=${WORKER_CONCURRENCY}, LOG_LEVEL=warn`,
  };

  if (THROUGHPUT_ONLY) return throughputOnly(machine, settings);

  // Scenario A
  let stack = await startStack(20);
  let pids = { bench: process.pid, fake: stack.fake.pid, api: stack.api.pid, worker: stack.worker.pid, redis: machine.redis_pid };
  const rows = [];
  for (const workload of Object.keys(WORKLOADS)) {
    for (const concurrency of CONCURRENCIES) {
      if (CELLS && !CELLS.has(`${workload}:${concurrency}`)) continue;
      const quiet = await waitForQuiet(`${workload} c=${concurrency}`);
      log(`A: ${workload} c=${concurrency}: direct...`);
      const direct = await runDirect(stack.fake.url, workload, concurrency, DURATION_S, pids);
      log(`A: ${workload} c=${concurrency}: direct p50 ${direct.latency_ms.p50} ms, ${direct.requests_per_s} req/s; gateway...`);
      const gateway = await runGateway(stack.url, workload, concurrency, DURATION_S, pids);
      gateway.breakdown = await jobBreakdown(stack.prefix, gateway);
      log(`A: ${workload} c=${concurrency}: gateway p50 ${gateway.latency_ms.p50} ms (exact ${gateway.latency_ms_exact.p50}), ${gateway.requests_per_s} req/s, non-2xx ${gateway.non2xx}`);
      rows.push({
        workload,
        concurrency,
        quiet_before: quiet,
        direct,
        gateway,
        added_ms: {
          p50: round(gateway.latency_ms.p50 - direct.latency_ms.p50, 3),
          p99: round(gateway.latency_ms.p99 - direct.latency_ms.p99, 3),
        },
        added_ms_exact: {
          p50: round(gateway.latency_ms_exact.p50 - direct.latency_ms.p50, 3),
          p99: round(gateway.latency_ms_exact.p99 - direct.latency_ms.p99, 3),
        },
      });
    }
  }
  await stopStack(stack);

  if (CELLS || SKIP_THROUGHPUT) {
    // A partial run (A/B comparisons): scenario A's cells only, no targets verdict.
    const partial = { machine, settings, dist: path.relative(ROOT, DIST), latency20: { fake_latency_ms: 20, rows } };
    fs.mkdirSync(OUT_DIR, { recursive: true });
    fs.writeFileSync(path.join(OUT_DIR, 'results-partial.json'), JSON.stringify(partial, null, 2) + '\n');
    const out = [`build: ${partial.dist}`, '', '| workload | c | direct p50 ms | gateway p50 exact ms | added p50 ms | added p50 exact ms | added p99 ms | gateway req/s |', '|---|---:|---:|---:|---:|---:|---:|---:|'];
    for (const r of rows) {
      out.push(
        `| ${r.workload} | ${r.concurrency} | ${fmt(r.direct.latency_ms.p50)} | ${fmt(r.gateway.latency_ms_exact.p50)} | ${signed(r.added_ms.p50)} | ${signed(r.added_ms_exact.p50)} | ${signed(r.added_ms.p99)} | ${fmt(r.gateway.requests_per_s, 1)} |`,
      );
    }
    process.stdout.write(out.join('\n') + '\n');
    return;
  }

  // Scenario B: a fresh fake (latency 0) + API + worker on a new prefix.
  stack = await startStack(0);
  pids = { bench: process.pid, fake: stack.fake.pid, api: stack.api.pid, worker: stack.worker.pid, redis: machine.redis_pid };
  const quietB = await waitForQuiet('throughput');
  log(`B: chat c=64 latency 0: gateway...`);
  const tGateway = await runGateway(stack.url, 'chat', 64, THROUGHPUT_DURATION_S, pids);
  tGateway.breakdown = await jobBreakdown(stack.prefix, tGateway);
  log(`B: gateway ${tGateway.requests_per_s} req/s, p50 ${tGateway.latency_ms.p50} ms, non-2xx ${tGateway.non2xx}; direct reference...`);
  const quietBDirect = await waitForQuiet('throughput direct');
  const tDirect = await runDirect(stack.fake.url, 'chat', 64, THROUGHPUT_DURATION_S, pids);
  log(`B: direct ${tDirect.requests_per_s} req/s`);
  await stopStack(stack);

  const c1 = (w) => rows.find((r) => r.workload === w && r.concurrency === 1);
  const results = {
    machine,
    settings,
    latency20: { fake_latency_ms: 20, rows },
    latency0: { fake_latency_ms: 0, workload: 'chat', concurrency: 64, quiet_before: quietB, quiet_before_direct: quietBDirect, gateway: tGateway, direct: tDirect },
    targets: {
      added_p50_c1_ms: {
        target: TARGET_ADDED_P50_MS,
        chat: c1('chat').added_ms.p50,
        chat_exact: c1('chat').added_ms_exact.p50,
        embedding: c1('embedding').added_ms.p50,
        embedding_exact: c1('embedding').added_ms_exact.p50,
        met: [c1('chat'), c1('embedding')].every((r) => r.added_ms.p50 <= TARGET_ADDED_P50_MS && r.added_ms_exact.p50 <= TARGET_ADDED_P50_MS),
      },
      throughput_rps: {
        target: TARGET_THROUGHPUT_RPS,
        measured: tGateway.requests_per_s,
        met: tGateway.requests_per_s >= TARGET_THROUGHPUT_RPS && tGateway.non2xx === 0,
      },
    },
  };
  const nonOk = [...rows.map((r) => r.gateway), tGateway].reduce((n, g) => n + g.non2xx + g.errors + g.timeouts, 0);
  if (nonOk > 0) log(`WARNING: ${nonOk} gateway responses were not 2xx (or errored / timed out): see status_codes in results.json`);

  fs.mkdirSync(OUT_DIR, { recursive: true });
  fs.writeFileSync(path.join(OUT_DIR, 'results.json'), JSON.stringify(results, null, 2) + '\n');
  process.stdout.write(markdown(results) + '\n');
  log(`wrote ${path.relative(ROOT, path.join(OUT_DIR, 'results.json'))}`);
}

/** Scenario B alone (BENCH_THROUGHPUT_ONLY=1), for A/B runs of the throughput. */
async function throughputOnly(machine, settings) {
  const stack = await startStack(0);
  const pids = { bench: process.pid, fake: stack.fake.pid, api: stack.api.pid, worker: stack.worker.pid, redis: machine.redis_pid };
  const quiet = await waitForQuiet('throughput');
  const gateway = await runGateway(stack.url, 'chat', 64, THROUGHPUT_DURATION_S, pids);
  await waitForQuiet('throughput direct');
  const direct = await runDirect(stack.fake.url, 'chat', 64, THROUGHPUT_DURATION_S, pids);
  await stopStack(stack);
  const partial = { machine, settings, dist: path.relative(ROOT, DIST), latency0: { fake_latency_ms: 0, workload: 'chat', concurrency: 64, quiet_before: quiet, gateway, direct } };
  fs.mkdirSync(OUT_DIR, { recursive: true });
  fs.writeFileSync(path.join(OUT_DIR, 'results-partial.json'), JSON.stringify(partial, null, 2) + '\n');
  process.stdout.write(
    [
      `build: ${partial.dist}`,
      '',
      '| path | req/s | p50 ms | p99 ms | non-2xx | errors | requests |',
      '|---|---:|---:|---:|---:|---:|---:|',
      `| gateway | ${fmt(gateway.requests_per_s, 1)} | ${fmt(gateway.latency_ms.p50)} | ${fmt(gateway.latency_ms.p99)} | ${gateway.non2xx} | ${gateway.errors} | ${gateway.requests} |`,
      `| direct SDK | ${fmt(direct.requests_per_s, 1)} | ${fmt(direct.latency_ms.p50)} | ${fmt(direct.latency_ms.p99)} | n/a | ${direct.errors} | ${direct.requests} |`,
    ].join('\n') + '\n',
  );
}

main()
  .then(() => cleanup())
  .then(() => process.exit(0))
  .catch(async (err) => {
    log(`FAILED: ${err && err.stack ? err.stack : err}`);
    await cleanup().catch(() => undefined);
    process.exit(1);
  });
