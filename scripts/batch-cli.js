#!/usr/bin/env node
/**
 * Batch client for the gateway (plain Node >= 20, no build, no dependencies).
 *
 *   npm run batch -- submit texts.jsonl --out results.jsonl [--provider openai --model text-embedding-3-small]
 *   npx inference-gateway batch submit texts.jsonl --out results.jsonl
 *   npm run batch -- cancel <batch_id>
 *
 * Input lines are full request lines ({"custom_id", "provider", "model", "inputs", ...}) or plain
 * {"custom_id", "text"} lines, which become embedding requests for --provider/--model (a missing
 * custom_id becomes the line number). The file is streamed to POST /v1/inference/batches as
 * NDJSON; progress (rate, ETA) is drawn on stderr while the batch runs; the results are written to
 * --out in input order. The batch id is kept in <out>.batch.json until the results are written,
 * so running the same command again after an interruption resumes that batch instead of
 * submitting a new one.
 *
 * Options: --url (GATEWAY_URL, default http://127.0.0.1:8000), --api-key (GATEWAY_API_KEY),
 * --callback-url, --metadata '<json>', --poll-ms (default 1000).
 */
'use strict';
const fs = require('node:fs');
const readline = require('node:readline');

const TERMINAL = new Set(['COMPLETED', 'FAILED', 'CANCELED', 'EXPIRED']);

function parseArgs(argv) {
  const args = argv[0] === 'batch' ? argv.slice(1) : argv;
  const positional = [];
  const flags = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      if (eq > 0) flags[a.slice(2, eq)] = a.slice(eq + 1);
      else flags[a.slice(2)] = args[++i];
    } else positional.push(a);
  }
  return { command: positional[0], rest: positional.slice(1), flags };
}

function fail(message) {
  process.stderr.write(`batch: ${message}\n`);
  process.exit(1);
}

class Client {
  constructor(flags) {
    this.base = (flags.url || process.env.GATEWAY_URL || 'http://127.0.0.1:8000').replace(/\/+$/, '');
    const key = flags['api-key'] || process.env.GATEWAY_API_KEY;
    this.headers = key ? { authorization: `Bearer ${key}` } : {};
  }

  async call(method, path, init = {}) {
    const res = await fetch(this.base + path, { method, ...init, headers: { ...this.headers, ...(init.headers || {}) } });
    if (res.ok) return res;
    const text = await res.text();
    let message = text;
    try {
      const body = JSON.parse(text);
      message = body.error ? `${body.error.message} (${body.error.code || body.error.type})` : JSON.stringify(body.detail || body);
    } catch {
      // not JSON: keep the text
    }
    const err = new Error(`${method} ${path}: HTTP ${res.status}: ${message}`);
    err.status = res.status;
    throw err;
  }

  async json(method, path, init) {
    return (await this.call(method, path, init)).json();
  }
}

/** The input file as NDJSON request lines, read as the upload asks for them. */
async function* requestLines(file, flags, counter) {
  const input = readline.createInterface({ input: fs.createReadStream(file), crlfDelay: Infinity });
  let n = 0;
  for await (const raw of input) {
    if (raw.trim() === '') continue;
    n++;
    let line;
    try {
      line = JSON.parse(raw);
    } catch {
      yield `${raw}\n`; // the gateway answers it with its own invalid_json error line
      counter.lines = n;
      continue;
    }
    if (line && typeof line === 'object' && !('inputs' in line) && 'text' in line) {
      if (!flags.provider || !flags.model) fail(`line ${n} is a plain {"custom_id","text"} line: give --provider and --model for it`);
      const { text, custom_id, ...rest } = line;
      line = { custom_id: custom_id ?? String(n), provider: flags.provider, model: flags.model, inputs: { text }, ...rest };
    } else if (line && typeof line === 'object' && line.custom_id === undefined) {
      line.custom_id = String(n);
    }
    counter.lines = n;
    yield `${JSON.stringify(line)}\n`;
  }
}

async function submit(client, file, flags) {
  const query = new URLSearchParams();
  if (flags['callback-url']) query.set('callback_url', flags['callback-url']);
  if (flags.metadata) query.set('metadata', flags.metadata);
  const counter = { lines: 0 };
  const ticker = setInterval(() => progressLine(`uploading: ${counter.lines} lines read`), 500);
  try {
    const res = await client.call('POST', `/v1/inference/batches${query.size ? `?${query}` : ''}`, {
      headers: { 'content-type': 'application/x-ndjson' },
      body: requestLines(file, flags, counter),
      duplex: 'half',
    });
    return res.json();
  } finally {
    clearInterval(ticker);
  }
}

let lastWasProgress = false;
/** On a terminal: one line redrawn in place; elsewhere (logs, CI): one line per update. */
function progressLine(text) {
  if (process.stderr.isTTY) {
    process.stderr.write(`\r\x1b[2K${text}`);
    lastWasProgress = true;
  } else {
    process.stderr.write(`${text}\n`);
  }
}

function endProgress() {
  if (lastWasProgress) process.stderr.write('\n');
  lastWasProgress = false;
}

function clock(seconds) {
  if (!Number.isFinite(seconds)) return '--:--';
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (v) => String(v).padStart(2, '0');
  return h > 0 ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}

/** `[#####-----]  50.0% 5000/10000 (3 failed) 812.4/s ETA 0:06 IN_PROGRESS` */
function renderProgress(view, rate) {
  const { total, completed, failed } = view.request_counts;
  const done = completed + failed;
  const width = 30;
  const filled = total > 0 ? Math.round((done / total) * width) : 0;
  const eta = rate > 0 ? (total - done) / rate : Infinity;
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${view.progress.toFixed(1).padStart(5)}% ${done}/${total} (${failed} failed) ${rate.toFixed(1)}/s ETA ${clock(eta)} ${view.status}`;
}

async function waitForEnd(client, id, pollMs) {
  const samples = [];
  let last = '';
  for (;;) {
    const view = await client.json('GET', `/v1/inference/batches/${id}`);
    const done = view.request_counts.completed + view.request_counts.failed;
    samples.push({ at: Date.now(), done });
    while (samples.length > 2 && samples[samples.length - 1].at - samples[0].at > 30_000) samples.shift();
    const first = samples[0];
    const latest = samples[samples.length - 1];
    const rate = latest.at > first.at ? ((latest.done - first.done) * 1000) / (latest.at - first.at) : 0;
    const text = renderProgress(view, rate);
    if (text !== last) progressLine(text);
    last = text;
    if (TERMINAL.has(view.status)) {
      endProgress();
      return view;
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

async function download(client, id, out) {
  const res = await client.call('GET', `/v1/inference/batches/${id}/results`);
  const part = `${out}.part`;
  const sink = fs.createWriteStream(part);
  let lines = 0;
  for await (const chunk of res.body) {
    for (const byte of chunk) if (byte === 10) lines++;
    if (!sink.write(chunk)) await new Promise((r) => sink.once('drain', r));
  }
  await new Promise((resolve, reject) => sink.end((err) => (err ? reject(err) : resolve())));
  fs.renameSync(part, out);
  return lines;
}

async function runSubmit(client, rest, flags) {
  const [file] = rest;
  const out = flags.out;
  if (!file || !out) fail('usage: submit <input.jsonl> --out <results.jsonl> [--provider P --model M] [--url U] [--api-key K]');
  const stateFile = `${out}.batch.json`;
  let id;
  if (fs.existsSync(stateFile)) {
    id = JSON.parse(fs.readFileSync(stateFile, 'utf8')).batch_id;
    process.stderr.write(`resuming batch ${id} (from ${stateFile}; delete it to submit again)\n`);
  } else {
    if (!fs.existsSync(file)) fail(`no such file: ${file}`);
    const view = await submit(client, file, flags);
    endProgress();
    id = view.batch_id;
    fs.writeFileSync(stateFile, `${JSON.stringify({ batch_id: id, input: file, url: client.base, submitted_at: new Date().toISOString() })}\n`);
    process.stderr.write(`submitted batch ${id}: ${view.request_counts.total} lines\n`);
  }
  const view = await waitForEnd(client, id, Number(flags['poll-ms'] || 1000));
  if (view.status === 'EXPIRED') fail(`batch ${id} has expired: its results are gone (delete ${stateFile} to submit again)`);
  const lines = await download(client, id, out);
  fs.rmSync(stateFile, { force: true });
  const { completed, failed, total } = view.request_counts;
  process.stderr.write(`batch ${id} ${view.status}: ${completed} completed, ${failed} failed of ${total}; ${lines} result lines in ${out}\n`);
  if (view.status !== 'COMPLETED') process.exitCode = 2;
}

async function main() {
  const { command, rest, flags } = parseArgs(process.argv.slice(2));
  const client = new Client(flags);
  switch (command) {
    case 'submit':
      return runSubmit(client, rest, flags);
    case 'cancel': {
      if (!rest[0]) fail('usage: cancel <batch_id>');
      const view = await client.json('DELETE', `/v1/inference/batches/${rest[0]}`);
      process.stderr.write(`batch ${view.batch_id}: ${view.status}\n`);
      return undefined;
    }
    default:
      return fail('commands: submit <input.jsonl> --out <results.jsonl>, cancel <batch_id>');
  }
}

main().catch((err) => {
  endProgress();
  fail(err.message);
});
