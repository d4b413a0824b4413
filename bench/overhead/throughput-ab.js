#!/usr/bin/env node
'use strict';
/**
 * Throughput of several builds at c=64 against a 0 ms fake, in alternating rounds, with the CPU
 * each process spends per request.
 *
 *   node bench/overhead/throughput-ab.js <build> [<build> ...]     e.g. tmp/ab-base/dist dist
 *
 * One run of run.js cannot rank two builds by throughput on these VMs: the same build measures
 * ±20 % from one minute to the next. Here each round starts, for each build in turn, a fresh
 * fake, API and worker (WORKER_CONCURRENCY=128), drives chat requests at c=64 with autocannon
 * (warm-up, then the measured window), and reads the CPU time the API, the worker and Redis
 * used in that window from /proc/<pid>/stat: CPU per request moves less than req/s with the
 * machine's minute. The output is every round, then per build the median req/s and CPU per
 * request, and per round the ratio of each build's req/s to the first build's.
 *
 * Knobs (env): TP_ROUNDS (default 6), TP_SECONDS (measured window, default 8), TP_WARMUP_S
 * (default 3), TP_CONNECTIONS (default 64; 1 profiles the sequential path), TP_CPU_PROFILE=1 (writes --cpu-prof profiles of the API and the worker to
 * bench/overhead/out/profiles/). Linux only (/proc), like the CPU columns of run.js.
 */

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const autocannon = require('autocannon');
const IORedis = require('ioredis');
const { ROOT, posNum, log, sleep, prefixes, startChild, waitForLine, stopChild, freePort, gatewayEnv, runBench, deletePrefixKeys } = require('../support');

const ROUNDS = posNum(process.env.TP_ROUNDS, 6);
const SECONDS = posNum(process.env.TP_SECONDS, 8);
const WARMUP_S = posNum(process.env.TP_WARMUP_S, 3);
const CONNECTIONS = posNum(process.env.TP_CONNECTIONS, 64);
const PROFILE_DIR = path.join(__dirname, 'out/profiles');
const PROFILE = process.env.TP_CPU_PROFILE === '1' ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`] : [];
const BODY = JSON.stringify({ provider: 'openai', model: 'gpt-4o-mini', inputs: { prompts: ['What is AI?'] }, parameters: { max_tokens: 50 } });
const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

/** CPU time (user + system, ms) a process has used, from /proc/<pid>/stat (clock ticks of 10 ms). */
function cpuMs(pid) {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function redisServerPid() {
  const pids = execFileSync('pidof', ['redis-server']).toString().trim().split(/\s+/);
  if (pids.length !== 1) throw new Error(`expected one redis-server process, found ${pids.length}`);
  return Number(pids[0]);
}

function load(url, seconds) {
  return new Promise((resolve, reject) =>
    autocannon({ url: `${url}/v1/inference`, method: 'POST', headers: { 'content-type': 'application/json' }, body: BODY, connections: CONNECTIONS, duration: seconds }, (err, result) =>
      err ? reject(err) : resolve(result),
    ),
  );
}

async function measure(dist, redisPid) {
  const fakePort = await freePort();
  const fake = startChild('fake', [path.join(ROOT, 'dist/test/fakes/openai-fake.js'), '--port', String(fakePort), '--latency', '0', '--no-record'], {});
  const fakeUrl = (await waitForLine(fake, /^OPENAI_FAKE_URL=/, 15_000)).slice('OPENAI_FAKE_URL='.length).trim();
  const prefix = `bench-tp-${crypto.randomBytes(4).toString('hex')}`;
  prefixes.add(prefix);
  const port = await freePort();
  const env = gatewayEnv({ port, prefix, fakeUrl, RATE_LIMITS_FILE: path.join(__dirname, 'limits.yaml'), SYNC_TIMEOUT_MS: '30000', WORKER_CONCURRENCY: '128' });
  const build = path.resolve(ROOT, dist);
  const api = startChild('api', [...PROFILE, path.join(build, 'apps/api/src/main.js')], env);
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; !(await fetch(`${url}/health`).then((r) => r.ok, () => false)); i++) {
    if (api.exited || i > 300) throw new Error(`the API of ${dist} did not start`);
    await sleep(100);
  }
  const worker = startChild('worker', [...PROFILE, path.join(build, 'apps/worker/src/main.js')], env);
  try {
    await load(url, WARMUP_S);
    const pids = { api: api.pid, worker: worker.pid, redis: redisPid };
    const before = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuMs(pid)]));
    const result = await load(url, SECONDS);
    if (result.non2xx || result.errors) throw new Error(`${dist}: ${result.non2xx} non-2xx answers, ${result.errors} errors`);
    const cpuUsPerRequest = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, ((cpuMs(pid) - before[name]) * 1000) / result.requests.total]));
    return { reqPerS: result.requests.average, p50: result.latency.p50, cpuUsPerRequest };
  } finally {
    await stopChild(worker);
    await stopChild(api);
    await stopChild(fake);
    const redis = new IORedis(REDIS_URL);
    await deletePrefixKeys(redis, prefix).finally(() => redis.disconnect());
    prefixes.delete(prefix);
  }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

runBench(async () => {
  const builds = process.argv.slice(2);
  if (builds.length === 0) throw new Error('usage: node bench/overhead/throughput-ab.js <build dist> [<build dist> ...]');
  if (PROFILE.length) fs.mkdirSync(PROFILE_DIR, { recursive: true });
  const redisPid = redisServerPid();
  const runs = new Map(builds.map((b) => [b, []]));
  for (let round = 1; round <= ROUNDS; round++) {
    for (const dist of builds) {
      const r = await measure(dist, redisPid);
      runs.get(dist).push(r);
      const cpu = Object.entries(r.cpuUsPerRequest).map(([name, us]) => `${name} ${us.toFixed(0)} µs`).join(', ');
      log(`round ${round} ${dist}: ${r.reqPerS.toFixed(1)} req/s, p50 ${r.p50} ms; CPU per request: ${cpu}`);
    }
  }
  console.log('| build | req/s per round | median req/s | API µs/req | worker µs/req | Redis µs/req |');
  console.log('|---|---|---:|---:|---:|---:|');
  for (const [dist, rs] of runs) {
    const m = (name) => median(rs.map((r) => r.cpuUsPerRequest[name])).toFixed(0);
    console.log(`| ${dist} | ${rs.map((r) => r.reqPerS.toFixed(0)).join(', ')} | ${median(rs.map((r) => r.reqPerS)).toFixed(1)} | ${m('api')} | ${m('worker')} | ${m('redis')} |`);
  }
  const first = runs.get(builds[0]);
  for (const dist of builds.slice(1)) {
    const ratios = runs.get(dist).map((r, i) => r.reqPerS / first[i].reqPerS);
    console.log(`\n${dist} / ${builds[0]} per round: ${ratios.map((x) => x.toFixed(2)).join(', ')} (median ${median(ratios).toFixed(2)})`);
  }
});
