import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ffmpeg, MediaToolMissingError } from './ffmpeg';
import { MediaError } from './media-error';

describe('Ffmpeg', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gw-ffmpeg-'));
  const tools = new Ffmpeg(process.env.FFMPEG_PATH || 'ffmpeg', process.env.FFPROBE_PATH || 'ffprobe');
  const wav = join(dir, 'a.wav');
  beforeAll(() => {
    // 3 s tone, 1 s silence, 3 s tone.
    execFileSync('ffmpeg', ['-loglevel', 'error', '-f', 'lavfi', '-i', "aevalsrc='sin(2*PI*440*t)*not(between(t,3,4))':s=8000:d=7", wav]);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('probes duration and streams, finds silences, cuts a compact MP3 of the asked length', async () => {
    expect(await tools.probe(wav)).toMatchObject({ format: 'wav', hasAudio: true, hasVideo: false });
    expect((await tools.probe(wav)).durationSec).toBeCloseTo(7, 1);
    const [silence] = await tools.silences(wav);
    expect(silence[0]).toBeCloseTo(3, 0);
    expect(silence[1]).toBeCloseTo(4, 0);
    await tools.cutAudio(wav, 2, 4, join(dir, 'part.mp3'));
    expect((await tools.probe(join(dir, 'part.mp3'))).durationSec).toBeCloseTo(4, 0);
  });

  it('calls bytes it cannot decode media_unreadable, without the temp path', async () => {
    writeFileSync(join(dir, 'x.bin'), 'hello, not media');
    const err = await tools.probe(join(dir, 'x.bin')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MediaError);
    expect((err as MediaError).code).toBe('media_unreadable');
    expect((err as MediaError).message).not.toContain(dir);
  });

  it('names the variable to set when a binary is missing', async () => {
    const missing = new Ffmpeg('/nonexistent/ffmpeg', '/nonexistent/ffprobe');
    await expect(missing.probe(wav)).rejects.toThrow(MediaToolMissingError);
    await expect(missing.probe(wav)).rejects.toThrow('set FFPROBE_PATH');
    await expect(missing.cutAudio(wav, 0, 1, join(dir, 'y.mp3'))).rejects.toThrow('set FFMPEG_PATH');
  });

  it('stops the process when the signal aborts', async () => {
    const ac = new AbortController();
    const pending = tools.silences(wav, ac.signal);
    ac.abort();
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
  });
});
