#!/usr/bin/env node
'use strict';
/**
 * A burst into an idle worker: when does each job start, with BullMQ's own Worker and with the
 * gateway's StartFirstWorker (apps/worker/src/start-first-worker.ts)?
 *
 *   node bench/overhead/burst.js        (against dist/; `npm run build` first)
 *
 * Per round: a worker of one kind (concurrency BURST_SIZE, processor that returns at once)
 * waits on an empty queue; BURST_SIZE jobs are added in one addBulk; the time from the addBulk
 * call to each job's start is recorded. Rounds alternate the kinds (BURST_ROUNDS per kind).
 * Output: per kind, the medians over rounds of the first, median and last job's start.
 *
 * Knobs (env): BURST_SIZE (64), BURST_ROUNDS (10), REDIS_URL (redis://127.0.0.1:6379).
 */

const path = require('node:path');
const crypto = require('node:crypto');
const { Queue, Worker } = require('bullmq');
const IORedis = require('ioredis');
const { ROOT, posNum, log, sleep, runBench } = require('../support');

const SIZE = posNum(process.env.BURST_SIZE, 64);
const ROUNDS = posNum(process.env.BURST_ROUNDS, 10);
const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const { StartFirstWorker } = require(path.join(ROOT, 'dist/apps/worker/src/start-first-worker'));

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

async function round(kind, prefix, n) {
  const connections = [];
  const connect = () => {
    const c = new IORedis(REDIS_URL, { maxRetriesPerRequest: null });
    connections.push(c);
    return c;
  };
  const name = `burst-${kind}-${n}`;
  const queue = new Queue(name, { connection: connect(), prefix });
  const starts = [];
  let t0 = 0;
  const Kind = kind === 'start-first' ? StartFirstWorker : Worker;
  const worker = new Kind(name, async () => void starts.push(performance.now() - t0), { connection: connect(), prefix, concurrency: SIZE });
  try {
    await worker.waitUntilReady();
    await sleep(300); // blocked on the empty queue
    t0 = performance.now();
    await queue.addBulk(Array.from({ length: SIZE }, (_, i) => ({ name: 'job', data: { i } })));
    const deadline = Date.now() + 30_000;
    while (starts.length < SIZE && Date.now() < deadline) await sleep(2);
    if (starts.length < SIZE) throw new Error(`${kind}: ${starts.length} of ${SIZE} jobs started`);
    starts.sort((a, b) => a - b);
    return { first: starts[0], median: starts[SIZE >> 1], last: starts[SIZE - 1] };
  } finally {
    await worker.close();
    await queue.obliterate({ force: true });
    await queue.close();
    for (const c of connections) c.disconnect();
  }
}

async function main() {
  const prefix = `bench-burst-${crypto.randomBytes(4).toString('hex')}`;
  const results = { bullmq: [], 'start-first': [] };
  for (let n = 0; n < ROUNDS; n++) {
    for (const kind of n % 2 === 0 ? ['bullmq', 'start-first'] : ['start-first', 'bullmq']) results[kind].push(await round(kind, prefix, n));
  }
  const f = (v) => v.toFixed(2);
  const rows = Object.entries(results).map(([kind, rs]) => `| ${kind} | ${f(median(rs.map((r) => r.first)))} | ${f(median(rs.map((r) => r.median)))} | ${f(median(rs.map((r) => r.last)))} |`);
  process.stdout.write(
    [`${SIZE} jobs in one addBulk into an idle worker (concurrency ${SIZE}); ms from the addBulk call to a job's start, medians of ${ROUNDS} rounds:`, '', '| worker | first job | median job | last job |', '|---|---:|---:|---:|', ...rows].join('\n') + '\n',
  );
  log('done');
}

runBench(main);
