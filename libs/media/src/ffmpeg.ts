import { spawn } from 'node:child_process';
import { MediaError } from './media-error';

/** What ffprobe tells about a media file. */
export interface MediaProbe {
  /** Container duration in s (0 when ffprobe cannot tell). */
  durationSec: number;
  /** ffprobe's container name(s), e.g. `mov,mp4,m4a,3gp,3g2,mj2` or `wav`. */
  format: string;
  hasAudio: boolean;
  /** A real video stream: cover art (an attached picture) does not count. */
  hasVideo: boolean;
}

/** ffmpeg or ffprobe is not installed where the configuration says: the operator's problem, not the client's. */
export class MediaToolMissingError extends Error {
  constructor(
    readonly tool: 'ffmpeg' | 'ffprobe',
    readonly variable: 'FFMPEG_PATH' | 'FFPROBE_PATH',
    path: string,
  ) {
    super(`${tool} was not found at "${path}": install ffmpeg (e.g. apt-get install ffmpeg) or set ${variable} to its binary`);
    this.name = 'MediaToolMissingError';
  }
}

/** stderr kept from one run, for error messages: ffmpeg's last lines say what went wrong. */
const STDERR_TAIL_CHARS = 4_000;

/**
 * ffmpeg and ffprobe as child processes: every call is asynchronous (the worker's event loop,
 * and with it BullMQ's lock renewal, keeps running), killed when the job's signal aborts, and
 * reads or writes files only, so memory does not grow with the media.
 */
export class Ffmpeg {
  constructor(
    private readonly ffmpegPath: string,
    private readonly ffprobePath: string,
  ) {}

  /** Duration, container and streams; a file ffprobe cannot read is the client's `media_unreadable`. */
  async probe(file: string, signal?: AbortSignal): Promise<MediaProbe> {
    const args = ['-v', 'error', '-show_entries', 'format=duration,format_name:stream=codec_type,duration:stream_disposition=attached_pic', '-of', 'json', file];
    let out: string;
    try {
      out = (await this.exec('ffprobe', args, signal)).stdout;
    } catch (err) {
      if (err instanceof ToolFailedError) throw unreadable(err.stderr);
      throw err;
    }
    const json = JSON.parse(out) as ProbeJson;
    const streams = json.streams ?? [];
    const format = json.format?.format_name ?? '';
    const durations = [Number(json.format?.duration), ...streams.map((s) => Number(s.duration))].filter((d) => Number.isFinite(d) && d > 0);
    if (!format || streams.length === 0) throw unreadable('no streams');
    return {
      durationSec: durations.length > 0 ? Math.max(...durations) : 0,
      format,
      hasAudio: streams.some((s) => s.codec_type === 'audio'),
      hasVideo: streams.some((s) => s.codec_type === 'video' && s.disposition?.attached_pic !== 1),
    };
  }

  /**
   * Silent stretches of the audio (`silencedetect`), as [start, end] in s: good places to cut.
   * One decoding pass over the file, streamed: stderr is parsed line by line, never kept whole.
   */
  async silences(file: string, signal?: AbortSignal, noiseDb = -35, minSec = 0.3): Promise<Array<[number, number]>> {
    const found: Array<[number, number]> = [];
    let start: number | undefined;
    await this.exec('ffmpeg', ['-hide_banner', '-nostats', '-i', file, '-vn', '-af', `silencedetect=noise=${noiseDb}dB:d=${minSec}`, '-f', 'null', '-'], signal, (line) => {
      const s = /silence_start: (-?[\d.]+)/.exec(line);
      if (s) start = Math.max(0, Number(s[1]));
      const e = /silence_end: ([\d.]+)/.exec(line);
      if (e && start !== undefined) {
        found.push([start, Number(e[1])]);
        start = undefined;
      }
    }).catch((err: unknown) => {
      if (err instanceof ToolFailedError) throw unreadable(err.stderr);
      throw err;
    });
    return found;
  }

  /** Audio from `startSec` for `lengthSec` as compact speech-grade MP3 (16 kHz mono, 32 kbit/s: 14 MB per hour). */
  async cutAudio(file: string, startSec: number, lengthSec: number, out: string, signal?: AbortSignal): Promise<void> {
    await this.cut(['-ss', secs(startSec), '-i', file, '-t', secs(lengthSec), '-vn', '-ac', '1', '-ar', '16000', '-c:a', 'libmp3lame', '-b:a', '32k', '-f', 'mp3', out], signal);
  }

  /**
   * Video from `startSec` for `lengthSec`, re-encoded (H.264, at most `maxHeight` lines, no audio):
   * frame-accurate cuts, so each window's offsets are exact, and small enough to send inline.
   */
  async cutVideo(file: string, startSec: number, lengthSec: number, out: string, signal?: AbortSignal, maxHeight = 480): Promise<void> {
    const scale = `scale=-2:'min(${maxHeight},ih)'`;
    const args = ['-ss', secs(startSec), '-i', file, '-t', secs(lengthSec), '-an', '-vf', scale, '-c:v', 'libx264', '-preset', 'veryfast', '-crf', '30'];
    await this.cut([...args, '-pix_fmt', 'yuv420p', '-movflags', '+faststart', '-f', 'mp4', out], signal);
  }

  private async cut(args: string[], signal?: AbortSignal): Promise<void> {
    try {
      await this.exec('ffmpeg', ['-hide_banner', '-nostats', '-loglevel', 'error', '-y', ...args], signal);
    } catch (err) {
      if (err instanceof ToolFailedError) throw unreadable(err.stderr);
      throw err;
    }
  }

  private exec(tool: 'ffmpeg' | 'ffprobe', args: string[], signal?: AbortSignal, onStderrLine?: (line: string) => void): Promise<{ stdout: string }> {
    const bin = tool === 'ffmpeg' ? this.ffmpegPath : this.ffprobePath;
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason instanceof Error ? signal.reason : abortError());
      const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], signal });
      let stdout = '';
      let stderr = '';
      let partial = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => {
        // ffprobe's JSON is small; ffmpeg writes nothing here (outputs are files).
        if (stdout.length < 1_000_000) stdout += d;
      });
      child.stderr.setEncoding('utf8').on('data', (d: string) => {
        stderr = (stderr + d).slice(-STDERR_TAIL_CHARS);
        if (!onStderrLine) return;
        const lines = (partial + d).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) onStderrLine(line);
      });
      child.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT' || err.code === 'EACCES') reject(new MediaToolMissingError(tool, tool === 'ffmpeg' ? 'FFMPEG_PATH' : 'FFPROBE_PATH', bin));
        // Aborted: the child has only been signalled. Settle on 'close', once it has exited, so
        // that the caller's clean-up cannot run before ffmpeg's last write to its output file.
        else if (err.name !== 'AbortError') reject(err);
      });
      child.on('close', (code) => {
        if (signal?.aborted) return reject(abortError());
        if (partial && onStderrLine) onStderrLine(partial);
        if (code === 0) resolve({ stdout });
        else reject(new ToolFailedError(stderr));
      });
    });
  }
}

class ToolFailedError extends Error {
  constructor(readonly stderr: string) {
    super('media tool failed');
  }
}

interface ProbeJson {
  format?: { format_name?: string; duration?: string };
  streams?: Array<{ codec_type?: string; duration?: string; disposition?: { attached_pic?: number } }>;
}

/** ffmpeg's own words say which part is broken; file paths are cut out (they name our temp folder). */
function unreadable(stderr: string): MediaError {
  const why = stderr
    .split('\n')
    .map((l) => l.replace(/\/[^\s:'"]+/g, '<file>').trim())
    .filter(Boolean)
    .slice(-2)
    .join('; ')
    .slice(0, 300);
  return new MediaError(`The media could not be decoded (truncated, or not audio/video)${why ? `: ${why}` : ''}`, 'media_unreadable');
}

function secs(value: number): string {
  return value.toFixed(3);
}

function abortError(): Error {
  const err = new Error('The media processing was aborted');
  err.name = 'AbortError';
  return err;
}
