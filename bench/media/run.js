#!/usr/bin/env node
'use strict';
/**
 * Long-media benchmark: one transcription job over a large WAV, through an API process, a
 * worker process and the OpenAI fake (Whisper), media served by a local HTTP server.
 *
 *   npm run bench:media            (builds, then runs this file)
 *   node bench/media/run.js        (against an existing dist/; BENCH_DIST=<folder> for another build)
 *
 * For each size: the file is generated with ffmpeg (48 kHz stereo PCM tone bursts with a pause
 * every 7 s; 1 GiB is 93 minutes), then
 *   - download only: the same safe downloader the worker uses, into a temp file (the floor);
 *   - end to end: POST /v1/inference (whisper-1, audio_url), polled until COMPLETED: download,
 *     ffprobe, silence detection, cutting into chunks, child jobs through the fake, merge.
 * Measured: both times, and the worker process's peak RSS (VmHWM from /proc: the true peak, not
 * a sample) and the largest RSS seen of its ffmpeg children (sampled every 200 ms).
 *
 * Knobs (env): BENCH_MEDIA_SIZES_MB (default "256,1024"), BENCH_MEDIA_CONCURRENCY (the worker's
 * WORKER_CONCURRENCY, default 4: chunks in flight at once, the same for every size, so that the
 * sizes compare), REDIS_URL, FFMPEG_PATH.
 */

const { execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const IORedis = require('ioredis');
const { ROOT, log, sleep, children, prefixes, startChild, waitForLine, stopChild, freePort, deletePrefixKeys, runBench, gatewayEnv, startApi } = require('../support');

const DIST = process.env.BENCH_DIST ? path.resolve(process.env.BENCH_DIST) : path.join(ROOT, 'dist');
const OUT_DIR = path.join(__dirname, 'out');
const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const FFMPEG = process.env.FFMPEG_PATH || 'ffmpeg';
const SIZES_MB = (process.env.BENCH_MEDIA_SIZES_MB || '256,1024').split(',').map(Number).filter((n) => n > 0);
const RSS_TARGET_MB = 200;
const CONCURRENCY = Number(process.env.BENCH_MEDIA_CONCURRENCY) || 4;
const BYTES_PER_SEC = 48_000 * 2 * 2;

function generate(dir, mb) {
  const seconds = Math.floor((mb * 1024 * 1024) / BYTES_PER_SEC);
  const file = path.join(dir, `tone-${mb}mb.wav`);
  execFileSync(FFMPEG, ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', `sine=f=440:sample_rate=48000:duration=${seconds}`, '-af', "volume=enable='lt(mod(t,7),1)':volume=0", '-ac', '2', '-c:a', 'pcm_s16le', file]);
  return { file, seconds, bytes: fs.statSync(file).size };
}

/** Streams files from `dir` by name, with Range support (as object stores do). */
function serve(dir) {
  const server = http.createServer((req, res) => {
    const file = path.join(dir, path.basename(req.url || '/'));
    fs.stat(file, (err, st) => {
      if (err) return res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'audio/wav', 'content-length': st.size, 'accept-ranges': 'bytes', etag: `"${st.size}"` });
      const stream = fs.createReadStream(file);
      res.on('close', () => stream.destroy());
      stream.pipe(res);
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

function procStatus(pid, field) {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

function childRss(pid) {
  try {
    return execFileSync('ps', ['-o', 'rss=', '--ppid', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .reduce((max, v) => Math.max(max, Number(v) * 1024), 0);
  } catch {
    return 0; // no children at this moment
  }
}

const mb = (bytes) => Math.round((bytes / 1024 / 1024) * 10) / 10;

async function runOne(url, fakeUrl, tmp, media) {
  // The floor: the worker's own downloader, alone.
  const { downloadToFile } = require(path.join(DIST, 'libs/media/src/safe-download.js'));
  const t0 = Date.now();
  const got = await downloadToFile(url, { maxBytes: 4 * 1024 ** 3, allowPrivate: true, tmpDir: tmp, totalTimeoutMs: 3_600_000 });
  const downloadMs = Date.now() - t0;
  fs.rmSync(got.path);

  const port = await freePort();
  const workerPort = await freePort();
  const prefix = `benchmedia-${crypto.randomBytes(4).toString('hex')}`;
  prefixes.add(prefix);
  const scratch = fs.mkdtempSync(path.join(tmp, 'worker-'));
  const env = gatewayEnv({
    port,
    prefix,
    fakeUrl,
    WORKER_CONCURRENCY: String(CONCURRENCY),
    RATE_LIMITS_FILE: 'none',
    MEDIA_ALLOW_PRIVATE_URLS: 'true',
    MEDIA_TMP_DIR: scratch,
    FFMPEG_PATH: FFMPEG,
  });
  const { api } = await startApi(DIST, env);
  const worker = startChild('worker', [path.join(DIST, 'apps/worker/src/main.js')], { ...env, WORKER_METRICS_PORT: String(workerPort), WORKER_METRICS_HOST: '127.0.0.1' });
  for (let i = 0; ; i++) {
    if (worker.exited) throw new Error('worker exited during start-up');
    if (await fetch(`http://127.0.0.1:${workerPort}/health`).then((r) => r.ok, () => false)) break;
    if (i > 300) throw new Error('worker did not answer /health within 30 s');
    await sleep(100);
  }
  const idleRss = procStatus(worker.pid, 'VmRSS');

  let ffmpegPeak = 0;
  let sampledPeak = 0;
  const sampler = setInterval(() => {
    ffmpegPeak = Math.max(ffmpegPeak, childRss(worker.pid));
    sampledPeak = Math.max(sampledPeak, procStatus(worker.pid, 'VmRSS'));
  }, 200);
  const t1 = Date.now();
  const submit = await fetch(`http://127.0.0.1:${port}/v1/inference`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', prefer: 'respond-async' },
    body: JSON.stringify({ provider: 'openai', model: 'whisper-1', inputs: { audio_url: url } }),
  });
  const { job_id: jobId } = await submit.json();
  let view;
  const phases = [];
  for (;;) {
    view = await (await fetch(`http://127.0.0.1:${port}/v1/inference/jobs/${jobId}`)).json();
    const phase = view.progress?.phase;
    if (phase && phases.at(-1)?.phase !== phase) phases.push({ phase, at_ms: Date.now() - t1 });
    if (['COMPLETED', 'FAILED', 'CANCELED'].includes(view.status)) break;
    await sleep(200);
  }
  const endToEndMs = Date.now() - t1;
  clearInterval(sampler);
  const peakRss = procStatus(worker.pid, 'VmHWM');
  const leftovers = fs.readdirSync(scratch).length;
  await stopChild(worker);
  await stopChild(api);
  if (view.status !== 'COMPLETED') throw new Error(`job ended ${view.status}: ${JSON.stringify(view.error)}`);
  const data = view.result.data;
  return {
    file_mb: mb(media.bytes),
    audio_seconds: media.seconds,
    download_only_s: downloadMs / 1000,
    end_to_end_s: endToEndMs / 1000,
    end_to_end_over_download: Math.round((endToEndMs / downloadMs) * 100) / 100,
    phases,
    chunks: view.progress?.parts_total,
    merged: { duration: data.duration, segments: data.segments.length, text_chars: data.text.length },
    worker_rss_idle_mb: mb(idleRss),
    worker_rss_peak_mb: mb(peakRss),
    worker_rss_peak_sampled_mb: mb(sampledPeak),
    ffmpeg_child_rss_peak_mb: mb(ffmpegPeak),
    temp_files_left: leftovers,
  };
}

async function main() {
  for (const f of ['apps/api/src/main.js', 'apps/worker/src/main.js', 'test/fakes/openai-fake.js', 'libs/media/src/safe-download.js']) {
    if (!fs.existsSync(path.join(DIST, f))) throw new Error(`${path.join(DIST, f)} is missing: run \`npm run build\` first (or \`npm run bench:media\`)`);
  }
  const redis = new IORedis(REDIS_URL, { maxRetriesPerRequest: 3 });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-media-'));
  let server;
  try {
    server = await serve(tmp);
    const fakePort = await freePort();
    const fake = startChild('fake', [path.join(DIST, 'test/fakes/openai-fake.js'), '--port', String(fakePort), '--no-record'], {});
    const fakeUrl = (await waitForLine(fake, /^OPENAI_FAKE_URL=/, 15_000)).slice('OPENAI_FAKE_URL='.length).trim();
    const runs = [];
    for (const size of SIZES_MB) {
      log(`generating ${size} MB of WAV`);
      const media = generate(tmp, size);
      const url = `http://127.0.0.1:${server.address().port}/${path.basename(media.file)}`;
      log(`running ${path.basename(media.file)} (${media.seconds} s of audio)`);
      const run = await runOne(url, fakeUrl, tmp, media);
      log(JSON.stringify(run));
      runs.push(run);
      fs.rmSync(media.file);
    }
    await stopChild(fake);
    const result = {
      date: new Date().toISOString(),
      node: process.version,
      cpus: os.cpus().length,
      worker_concurrency: CONCURRENCY,
      ffmpeg: execFileSync(FFMPEG, ['-version'], { encoding: 'utf8' }).split('\n')[0],
      runs,
      target: { worker_rss_peak_mb_below: RSS_TARGET_MB, met: runs.every((r) => r.worker_rss_peak_mb < RSS_TARGET_MB) },
    };
    fs.mkdirSync(OUT_DIR, { recursive: true });
    fs.writeFileSync(path.join(OUT_DIR, 'results.json'), JSON.stringify(result, null, 2));
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    server?.close();
    for (const p of prefixes) await deletePrefixKeys(redis, p).catch(() => 0);
    redis.disconnect();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

runBench(main);
