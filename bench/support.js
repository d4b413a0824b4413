'use strict';
/**
 * What the benchmarks share: their child processes (started, followed line by line, stopped,
 * and killed on any way out), free ports, removing a run's Redis keys, and one sequential sync
 * request for the c=1 probes.
 */

const { spawn } = require('node:child_process');
const http = require('node:http');
const net = require('node:net');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');

function posNum(raw, fallback) {
  const n = Number(raw);
  return raw !== undefined && raw !== '' && Number.isFinite(n) && n > 0 ? n : fallback;
}

const log = (msg) => process.stderr.write(`[bench] ${msg}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------------------------------
// Child processes

/** Every child we started, so that any way out kills them. */
const children = new Set();
let shuttingDown = false;
const prefixes = new Set();

function startChild(name, args, env) {
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.benchName = name;
  child.exited = false;
  child.output = [];
  children.add(child);
  child.on('exit', (code, signal) => {
    child.exited = true;
    children.delete(child);
    if (!child.stopping && !shuttingDown) log(`${name} exited unexpectedly (code ${code}, signal ${signal})\n${child.output.slice(-20).join('\n')}`);
  });
  let printed = 0;
  const onLine = (stream) => (line) => {
    child.output.push(line);
    if (child.output.length > 200) child.output.shift();
    // The gateway runs with LOG_LEVEL=warn, so whatever it prints is worth seeing; capped.
    if (name !== 'fake' && line.trim() && printed++ < 50) process.stderr.write(`[${name}:${stream}] ${line}\n`);
    for (const l of child.lineListeners ?? []) l(line);
  };
  splitLines(child.stdout, onLine('out'));
  splitLines(child.stderr, onLine('err'));
  return child;
}

function splitLines(stream, onLine) {
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk) => {
    buf += chunk;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      onLine(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
}

function waitForLine(child, re, timeoutMs) {
  return new Promise((resolve, reject) => {
    const existing = child.output.find((l) => re.test(l));
    if (existing) return resolve(existing);
    const timer = setTimeout(() => done(new Error(`${child.benchName}: no line matching ${re} within ${timeoutMs} ms`)), timeoutMs);
    const onExit = () => done(new Error(`${child.benchName} exited before printing ${re}:\n${child.output.slice(-20).join('\n')}`));
    const listener = (line) => {
      if (re.test(line)) done(null, line);
    };
    child.lineListeners = [...(child.lineListeners ?? []), listener];
    child.once('exit', onExit);
    function done(err, line) {
      clearTimeout(timer);
      child.lineListeners = (child.lineListeners ?? []).filter((l) => l !== listener);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(line);
    }
  });
}

async function stopChild(child, graceMs = 8000) {
  if (!child || child.exited) return;
  child.stopping = true;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => {
    if (!child.exited) child.kill('SIGKILL');
  }, graceMs);
  await exited;
  clearTimeout(timer);
}

function killAllSync() {
  for (const child of children) {
    child.stopping = true;
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}


async function deletePrefixKeys(redis, prefix) {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) deleted += await redis.del(...keys);
  } while (cursor !== '0');
  return deleted;
}

/**
 * The gateway's environment in a benchmark: the OpenAI queue in front of one fake, quiet logs, no
 * API keys, no worker metrics port (several workers share the machine); `extra` adds or overrides.
 */
function gatewayEnv({ port, prefix, fakeUrl, ...extra }) {
  return {
    PORT: String(port),
    REDIS_URL: process.env.REDIS_URL || 'redis://127.0.0.1:6379',
    QUEUE_PREFIX: prefix,
    OPENAI_API_KEY: 'bench',
    OPENAI_BASE_URL: fakeUrl,
    LOG_LEVEL: 'warn',
    API_KEYS: '',
    WORKER_QUEUES: 'openai',
    WORKER_METRICS_PORT: '0',
    ...extra,
  };
}

/** One keep-alive connection per API, so that sequential probes reuse it as a client would. */
let sequentialAgent;

/**
 * One synchronous `POST /v1/inference` of `body` (a JSON string) to the API on `port`, over one
 * kept-alive connection: resolves with [sent, answered] in process.hrtime.bigint() ns, and fails
 * on anything but a 200. For the probes that send requests one after another (ab.js, timeline.js).
 */
function syncRequest(port, body) {
  sequentialAgent ??= new http.Agent({ keepAlive: true, maxSockets: 1 });
  return new Promise((resolve, reject) => {
    const sent = process.hrtime.bigint();
    const headers = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
    const req = http.request({ host: '127.0.0.1', port, path: '/v1/inference', method: 'POST', agent: sequentialAgent, headers }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve([sent, process.hrtime.bigint()]) : reject(new Error(`status ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Starts the API from `dist` with `env` and waits (up to 30 s) until /health answers 200. */
async function startApi(dist, env) {
  const api = startChild('api', [path.join(dist, 'apps/api/src/main.js')], env);
  const url = `http://127.0.0.1:${env.PORT}`;
  for (let i = 0; ; i++) {
    if (api.exited) throw new Error('api exited during start-up');
    if (await fetch(`${url}/health`).then((r) => r.ok, () => false)) break;
    if (i > 300) throw new Error('api did not answer /health within 30 s');
    await sleep(100);
  }
  return { api, url };
}

/**
 * Runs a benchmark's main(): its children are killed on any way out (exit, Ctrl-C, SIGTERM,
 * a failure), and a failure sets exit code 1.
 */
function runBench(main) {
  process.on('exit', killAllSync);
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.once(sig, () => {
      shuttingDown = true;
      killAllSync();
      process.exit(130);
    });
  }
  main().catch((err) => {
    log(`failed: ${err.stack ?? err}`);
    process.exitCode = 1;
    for (const c of children) c.kill('SIGKILL');
  });
}

module.exports = { ROOT, posNum, log, sleep, children, prefixes, startChild, waitForLine, stopChild, killAllSync, freePort, deletePrefixKeys, runBench, gatewayEnv, startApi, syncRequest, setShuttingDown: (v) => (shuttingDown = v) };
