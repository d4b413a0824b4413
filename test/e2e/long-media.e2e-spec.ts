import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { OpenAIFake } from '../fakes/openai-fake';
import { VertexFake } from '../fakes/vertex-fake';
import { eventually, GatewayHarness } from '../support/gateway-harness';
import { FileServer, mediaTmpDir, testPatternVideo, toneWav, truncatedCopy } from '../support/media-gen';

jest.setTimeout(60_000);

/**
 * Long audio and video through the API, the worker and the fakes: media made by ffmpeg and
 * served from a loopback HTTP server. A 30-minute WAV (over Whisper's 25 MiB) is transcribed in
 * chunks and merged; a 7-minute video is embedded in windows of whole intervals; bad media is a
 * specific 400 before any provider call; nothing is left in the worker's temp folder.
 */
describe('long audio and video: chunked transcription, video windows', () => {
  let dir: string;
  let scratch: string;
  let files: FileServer;
  let openai: OpenAIFake;
  let vertex: VertexFake;
  let gw: GatewayHarness;
  const made: Record<string, string> = {};

  beforeAll(async () => {
    dir = await mediaTmpDir('e2e');
    scratch = path.join(dir, 'worker-tmp');
    const [wav, video, talkie, mute, short, lecture] = await Promise.all([
      toneWav(dir, 'talk-30min.wav', 1800),
      testPatternVideo(dir, 'pattern-7min.mp4', 420),
      testPatternVideo(dir, 'talkie.mp4', 20, { audio: true }),
      testPatternVideo(dir, 'mute.mp4', 10),
      toneWav(dir, 'short.wav', 15),
      testPatternVideo(dir, 'lecture.mp4', 180, { audio: true, faststart: true }),
    ]);
    Object.assign(made, { wav, video, talkie, mute, short, lecture });
    // The index (moov, first) promises 180 s; the data stops near half of it.
    made.truncated = await truncatedCopy(lecture, 'truncated.mp4', 0.5);
    await fsp.writeFile(path.join(dir, 'page.html'), '<!doctype html><html><body>not media</body></html>'.repeat(50));
    // Sparse: 3 GiB on paper, nothing on disk; the download must stop at MEDIA_MAX_BYTES.
    await fsp.writeFile(path.join(dir, 'huge.wav'), '');
    await fsp.truncate(path.join(dir, 'huge.wav'), 3 * 1024 ** 3);
    files = await FileServer.start(dir);
    openai = await OpenAIFake.start();
    vertex = await VertexFake.start();
    gw = new GatewayHarness({
      OPENAI_API_KEY: 'sk-test-key',
      OPENAI_BASE_URL: openai.baseUrl,
      GOOGLE_CLOUD_PROJECT: 'proj',
      GOOGLE_VERTEX_BASE_URL: vertex.baseUrl,
      GOOGLE_VERTEX_AUTH: 'none',
      MEDIA_ALLOW_PRIVATE_URLS: 'true',
      MEDIA_TMP_DIR: scratch,
      MEDIA_MAX_BYTES: String(100 * 1024 ** 2),
      JOB_ATTEMPTS: '2',
    });
    await gw.startApi();
    await gw.startWorker();
  });

  afterAll(async () => {
    await gw?.close();
    await openai?.close();
    await vertex?.close();
    await files?.close();
    if (dir) await fsp.rm(dir, { recursive: true, force: true });
  });

  beforeEach(() => {
    openai.reset();
    vertex.reset();
  });

  const transcribe = (inputs: Record<string, unknown>) =>
    gw.infer({ provider: 'openai', model: 'whisper-1', inputs }, { prefer: 'respond-async' });
  const embedVideo = (inputs: Record<string, unknown>, parameters: Record<string, unknown> = {}) =>
    gw.infer({ provider: 'google', model: 'multimodalembedding', inputs, parameters }, { prefer: 'respond-async' });
  const leftovers = async () => (await fsp.readdir(scratch).catch(() => [] as string[])).length;

  /** Polls to the end, keeping every distinct progress the client saw. */
  async function finish(jobId: string, timeoutMs = 45_000): Promise<{ view: any; progress: any[] }> {
    const progress: any[] = [];
    const view = await gw.pollJob(
      jobId,
      (v) => {
        const last = JSON.stringify(progress[progress.length - 1]);
        if (v.progress !== undefined && JSON.stringify(v.progress) !== last) progress.push(v.progress);
        return ['COMPLETED', 'FAILED', 'CANCELED'].includes(v.status);
      },
      timeoutMs,
    );
    return { view, progress };
  }

  it('a 30-minute WAV (27.5 MiB) is transcribed in chunks: one text, ordered absolute segments, overlap read once, whole duration', async () => {
    const res = await transcribe({ audio_url: files.url('talk-30min.wav') });
    expect(res.status).toBe(202);
    const { view, progress } = await finish(res.body.job_id);
    expect(view.status).toBe('COMPLETED');
    const data = view.result.data;
    // Three chunks of about AUDIO_CHUNK_SECONDS (600), each a compact MP3 well under 25 MiB.
    expect(openai.count('/audio/transcriptions')).toBe(3);
    const uploads = openai.requests.filter((r) => r.path.endsWith('/audio/transcriptions')).map((r) => (r.body as any).files[0]);
    for (const u of uploads) expect(u.size).toBeLessThan(4 * 1024 * 1024);
    expect(data.duration).toBeCloseTo(1800, 0);
    expect(data.segments.length).toBeGreaterThanOrEqual(180);
    expect(data.segments.length).toBeLessThanOrEqual(184);
    expect(data.segments[0].start).toBe(0);
    expect(data.segments[data.segments.length - 1].end).toBeCloseTo(1800, 0);
    for (let i = 1; i < data.segments.length; i++) {
      const [a, b] = [data.segments[i - 1], data.segments[i]];
      expect(b.start).toBeGreaterThanOrEqual(a.end - 1e-6); // no overlap: the repeated seconds were merged away
      expect(b.end).toBeGreaterThan(b.start);
      expect(b.start - a.end).toBeLessThan(10); // and no hole
    }
    expect(data.text).toBe(data.segments.map((s: any) => s.text.trim()).join(' '));
    // The client saw the download, then the parts counted.
    expect(progress.some((p) => p.bytes_downloaded > 0)).toBe(true);
    expect(progress[progress.length - 1]).toMatchObject({ parts_done: 3, parts_total: 3 });
    const order = ['downloading', 'splitting', 'parts', 'merging'];
    const seen = progress.map((p) => order.indexOf(p.phase));
    expect(seen).toEqual([...seen].sort((a, b) => a - b)); // phases never go back
    await eventually(async () => (await leftovers()) === 0, 5_000, 'temp files removed');
  });

  it('a 7-minute video is embedded in windows of whole intervals: segments in order with absolute offsets', async () => {
    const res = await embedVideo({ video_url: files.url('pattern-7min.mp4') }, { interval_sec: 16 });
    const { view } = await finish(res.body.job_id);
    expect(view.status).toBe('COMPLETED');
    const segments = view.result.data.segments;
    // 112 s windows (7 intervals of 16 s): 0-112, 112-224, 224-336, 336-420.
    expect(vertex.count(':predict')).toBe(4);
    expect(segments).toHaveLength(7 * 3 + 6);
    expect(segments[0]).toMatchObject({ start_offset_sec: 0, end_offset_sec: 16 });
    for (let i = 1; i < segments.length; i++) expect(segments[i].start_offset_sec).toBeCloseTo(segments[i - 1].end_offset_sec, 3);
    expect(segments[7]).toMatchObject({ start_offset_sec: 112, end_offset_sec: 128 });
    expect(segments[segments.length - 1].end_offset_sec).toBeCloseTo(420, 0);
    expect(segments.every((s: any) => s.end_offset_sec - s.start_offset_sec <= 16 + 1e-6 && s.embedding.length === 1408)).toBe(true);
    expect(view.result.data.dimensions).toBe(1408);
    await eventually(async () => (await leftovers()) === 0, 5_000, 'temp files removed');
  });

  it('a video given as audio_url has its audio track extracted and sent as MP3', async () => {
    const res = await transcribe({ audio_url: files.url('talkie.mp4') });
    const { view } = await finish(res.body.job_id);
    expect(view.status).toBe('COMPLETED');
    expect(openai.count('/audio/transcriptions')).toBe(1);
    const upload = (openai.requests.find((r) => r.path.endsWith('/audio/transcriptions'))!.body as any).files[0];
    expect(upload.contentType).toBe('audio/mpeg');
    expect(view.result.data.duration).toBeCloseTo(20, 0);
  });

  it('short audio goes to Whisper as it is, downloaded once', async () => {
    const res = await transcribe({ audio_url: files.url('short.wav') });
    const { view } = await finish(res.body.job_id);
    expect(view.status).toBe('COMPLETED');
    expect(view.result.data.duration).toBeCloseTo(15, 0);
    expect(files.hits.get('/short.wav')).toBe(1);
    const upload = (openai.requests.find((r) => r.path.endsWith('/audio/transcriptions'))!.body as any).files[0];
    expect(upload.size).toBe((await fsp.stat(made.short)).size);
  });

  it('DELETE of a long job cancels its parts: running ones aborted, waiting ones removed, nothing left on disk', async () => {
    openai.hang('/audio/transcriptions');
    const res = await transcribe({ audio_url: files.url('talk-30min.wav') });
    await openai.waitForRequests(1, '/audio/transcriptions', 30_000);
    const del = await gw.request('DELETE', `/v1/inference/jobs/${res.body.job_id}`);
    expect(del.status).toBe(200);
    expect(del.body).toMatchObject({ status: 'CANCELED', error: { code: 'job_canceled' } });
    const queue = gw.api!.get((await import('@lib/queue')).QueueRegistry).get('openai' as any);
    // Every part has ended (aborted, or removed before it ran): none waits, runs or holds the provider.
    await eventually(async () => {
      const open = await queue.getJobs(['waiting', 'active', 'delayed', 'waiting-children', 'prioritized']);
      return open.filter((j) => j.id?.startsWith(res.body.job_id)).length === 0;
    }, 15_000, 'parts ended');
    openai.release();
    expect(openai.count('/audio/transcriptions')).toBeLessThanOrEqual(3);
    expect((await gw.request('GET', `/v1/inference/jobs/${res.body.job_id}`)).body.status).toBe('CANCELED');
    await eventually(async () => (await leftovers()) === 0, 5_000, 'temp files removed');
  });

  it.each([
    ['a 404 URL', () => transcribe({ audio_url: files.url('status/404') }), 'media_download_failed'],
    ['a 403 URL', () => transcribe({ audio_url: files.url('status/403') }), 'media_download_failed'],
    ['a URL that is not media', () => transcribe({ audio_url: files.url('page.html') }), 'media_unreadable'],
    ['a truncated file', () => transcribe({ audio_url: files.url('truncated.mp4') }), 'media_truncated'],
    ['a file with no audio track', () => transcribe({ audio_url: files.url('mute.mp4') }), 'media_no_audio'],
    ['audio given as video', () => embedVideo({ video_url: files.url('short.wav') }), 'media_no_video'],
    ['a file over MEDIA_MAX_BYTES', () => transcribe({ audio_url: files.url('huge.wav') }), 'media_too_large'],
  ])('%s is a 400 with its own code, before any provider call', async (_what, send, code) => {
    const res = await send();
    const { view } = await finish(res.body.job_id);
    expect(view).toMatchObject({ status: 'FAILED', error: { type: 'BadRequestError', code } });
    expect(openai.count('/audio/transcriptions')).toBe(0);
    expect(vertex.count(':predict')).toBe(0);
    await eventually(async () => (await leftovers()) === 0, 5_000, 'temp files removed');
  });

  it.each([
    ['with Range support, the download resumes where the cut left it', true],
    ['without Range support, the job is retried and downloads again', false],
  ])('a server that cuts the connection mid-file: %s', async (_what, ranges) => {
    const cutting = await FileServer.start(dir, { ranges, dropAfterBytes: 64 * 1024 });
    try {
      const res = await transcribe({ audio_url: cutting.url('talkie.mp4') });
      const { view } = await finish(res.body.job_id);
      expect(view.status).toBe('COMPLETED');
      expect(view.result.data.duration).toBeCloseTo(20, 0);
      expect(cutting.hits.get('/talkie.mp4')).toBe(2);
      const size = (await fsp.stat(made.talkie)).size;
      // Resumed: only what was in flight when the connection dropped is sent twice. Retried: all of it.
      if (ranges) expect(cutting.bytesSent).toBeLessThan(size + 8 * 1024);
      else expect(cutting.bytesSent).toBeGreaterThan(size + 56 * 1024);
      expect(view.attempts).toBe(ranges ? 1 : 2);
    } finally {
      await cutting.close();
    }
  });

  it('SSRF: with MEDIA_ALLOW_PRIVATE_URLS off, loopback, private, link-local and metadata addresses are refused unfetched', async () => {
    const strict = new GatewayHarness({ OPENAI_API_KEY: 'sk-test-key', OPENAI_BASE_URL: openai.baseUrl, MEDIA_TMP_DIR: scratch });
    try {
      await strict.startApi();
      await strict.startWorker();
      const port = new URL(files.url('x')).port;
      const hitsBefore = [...files.hits.values()].reduce((a, b) => a + b, 0);
      for (const url of [files.url('talk-30min.wav'), `http://[::1]:${port}/talk-30min.wav`, 'http://10.1.2.3/a.wav', 'http://169.254.169.254/latest/meta-data/', 'http://[fd00:ec2::254]/latest/']) {
        const res = await strict.infer({ provider: 'openai', model: 'whisper-1', inputs: { audio_url: url } }, { prefer: 'respond-async' });
        const view = await strict.pollJob(res.body.job_id, (v) => v.status === 'FAILED', 15_000);
        expect({ url, code: view.error.code }).toEqual({ url, code: 'url_not_allowed' });
      }
      expect([...files.hits.values()].reduce((a, b) => a + b, 0)).toBe(hitsBefore);
      expect(openai.count('/audio/transcriptions')).toBe(0);
    } finally {
      await strict.close();
    }
  });

  it('the over-cap download stops early: the declared length is refused before the body', async () => {
    const before = files.bytesSent;
    const res = await transcribe({ audio_url: files.url('huge.wav') });
    await finish(res.body.job_id);
    expect(files.bytesSent - before).toBeLessThan(100 * 1024 ** 2);
  });
});
