#!/usr/bin/env node
'use strict';
/**
 * Where one sequential sync request spends its time, hop by hop.
 *
 *   node bench/overhead/timeline.js            (against dist/; BENCH_DIST=<folder> for another build)
 *
 * run.js and ab.js say how much the gateway adds at c=1, not where. This starts the OpenAI fake
 * (latency TL_LATENCY_MS, default 20), the API and one worker with timeline-preload.js, which
 * stamps every socket write and read and every HTTP request a server parses with one monotonic
 * clock shared by all processes of the machine; sends TL_WARMUP (300) and then TL_REQUESTS (300)
 * chat requests one after another from this process; and prints, for the commonest sequences
 * of events inside a request, the median time of each event since the request was sent and the
 * step from the one before. Redis is not instrumented: a write to Redis followed by another
 * process's read from Redis is Redis's turn plus the reader's wake-up.
 *
 * Event names: <process>.<kind>:<peer>; kind W = a write leaves the process, R = bytes arrive,
 * Q = an HTTP server has parsed a request; peer = redis, fake, worker (at the fake), client (at
 * the API). The stamps cost the processes a little (an array push per event), so the
 * total is a bit above run.js's. Linux or macOS; no Redis keys are left.
 */

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const IORedis = require('ioredis');
const { ROOT, posNum, log, prefixes, startChild, waitForLine, stopChild, freePort, gatewayEnv, startApi, runBench, deletePrefixKeys, syncRequest } = require('../support');

const DIST = path.resolve(ROOT, process.env.BENCH_DIST || 'dist');
const OUT = path.join(__dirname, 'out', 'timeline');
/** The fake's latency in ms: TL_LATENCY_MS, 20 by default (0 allowed: posNum takes only positive numbers). */
const LATENCY_MS = process.env.TL_LATENCY_MS === '0' ? '0' : String(posNum(process.env.TL_LATENCY_MS, 20));
const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const REDIS_PORT = Number(new URL(REDIS_URL).port || 6379);
const WARMUP = posNum(process.env.TL_WARMUP, 300);
const REQUESTS = posNum(process.env.TL_REQUESTS, 300);
const SEQUENCES = 3;
const BODY = JSON.stringify({ provider: 'openai', model: 'gpt-4o-mini', inputs: { prompts: ['What is AI?'] }, parameters: { max_tokens: 50 } });
const request = (port) => syncRequest(port, BODY);

function readEvents(apiPort, fakePort) {
  const peerOf = (remotePort, localPort) => {
    if (remotePort === REDIS_PORT) return 'redis';
    if (remotePort === fakePort) return 'fake';
    if (localPort === fakePort) return 'worker';
    if (localPort === apiPort) return 'client';
    return String(remotePort);
  };
  const events = [];
  for (const file of fs.readdirSync(OUT).filter((f) => f.endsWith('.log'))) {
    for (const line of fs.readFileSync(path.join(OUT, file), 'utf8').split('\n')) {
      if (!line) continue;
      const [ns, role, kind, remotePort, localPort] = line.split(' ');
      events.push({ ns: BigInt(ns), name: `${role}.${kind}:${peerOf(Number(remotePort), Number(localPort))}` });
    }
  }
  return events.sort((a, b) => (a.ns < b.ns ? -1 : a.ns > b.ns ? 1 : 0));
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (ns) => Number(ns) / 1e6;

function report(spans, events) {
  const bySequence = new Map();
  let from = 0;
  for (const [sent, answered] of spans) {
    while (from < events.length && events[from].ns < sent) from++;
    const inside = [];
    for (let i = from; i < events.length && events[i].ns <= answered; i++) inside.push(events[i]);
    const key = inside.map((e) => e.name).join(' ');
    if (!bySequence.has(key)) bySequence.set(key, []);
    bySequence.get(key).push({ at: inside.map((e) => ms(e.ns - sent)), total: ms(answered - sent) });
  }
  const out = [`${spans.length} requests, fake latency ${LATENCY_MS} ms, median total ${median(spans.map(([s, a]) => ms(a - s))).toFixed(3)} ms; ${bySequence.size} different sequences of events.`, ''];
  const common = [...bySequence].sort((a, b) => b[1].length - a[1].length).slice(0, SEQUENCES);
  for (const [key, requests] of common) {
    out.push(`${requests.length} requests with this sequence:`, '', '| event | median ms since sent | step ms |', '|---|---:|---:|');
    let previous = 0;
    key.split(' ').forEach((name, i) => {
      const at = median(requests.map((r) => r.at[i]));
      out.push(`| ${name} | ${at.toFixed(3)} | +${(at - previous).toFixed(3)} |`);
      previous = at;
    });
    const total = median(requests.map((r) => r.total));
    out.push(`| client has the answer | ${total.toFixed(3)} | +${(total - previous).toFixed(3)} |`, '');
  }
  return out.join('\n');
}

async function main() {
  fs.rmSync(OUT, { recursive: true, force: true });
  fs.mkdirSync(OUT, { recursive: true });
  const stamp = (role) => ({ NODE_OPTIONS: `--require ${path.join(__dirname, 'timeline-preload.js')}`, TIMELINE_DIR: OUT, TIMELINE_ROLE: role });
  const fakePort = await freePort();
  const fake = startChild('fake', [path.join(ROOT, 'dist/test/fakes/openai-fake.js'), '--port', String(fakePort), '--latency', LATENCY_MS, '--no-record'], stamp('fake'));
  const fakeUrl = (await waitForLine(fake, /^OPENAI_FAKE_URL=/, 15_000)).slice('OPENAI_FAKE_URL='.length).trim();
  const prefix = `bench-tl-${crypto.randomBytes(4).toString('hex')}`;
  prefixes.add(prefix);
  const port = await freePort();
  const env = gatewayEnv({ port, prefix, fakeUrl, RATE_LIMITS_FILE: path.join(__dirname, 'limits.yaml'), SYNC_TIMEOUT_MS: '30000', WORKER_CONCURRENCY: '128', WORKER_SHUTDOWN_GRACE_MS: '2000' });
  const { api } = await startApi(DIST, { ...env, ...stamp('api') });
  const worker = startChild('worker', [path.join(DIST, 'apps/worker/src/main.js')], { ...env, ...stamp('worker') });
  log(`warm-up: ${WARMUP} requests`);
  for (let i = 0; i < WARMUP; i++) await request(port);
  log(`measuring: ${REQUESTS} requests`);
  const spans = [];
  for (let i = 0; i < REQUESTS; i++) spans.push(await request(port));
  await stopChild(worker);
  await stopChild(api);
  await stopChild(fake);
  const redis = new IORedis(REDIS_URL);
  await deletePrefixKeys(redis, prefix);
  redis.disconnect();
  process.stdout.write(report(spans, readEvents(port, fakePort)) + '\n');
}

runBench(main);
