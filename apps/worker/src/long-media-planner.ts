import { ErrorType, GatewayError, LongMediaPlan, NormalizedRequest, Provider, Task } from '@lib/contracts';
import { GatewayConfig } from '@lib/config';
import { Ffmpeg, MediaError, MediaProbe, MediaToolMissingError, planAudioChunks, planVideoWindows } from '@lib/media';
import { MediaFile, OPENAI_TRANSCRIPTION_MAX_BYTES, VERTEX_VIDEO_MAX_SECONDS } from '@lib/providers';

/**
 * Largest video sent inline to Vertex, in bytes. Vertex caps a request's body (base64 makes the
 * bytes 4/3 larger) well above this; a bigger file is re-encoded in windows first.
 */
export const VERTEX_INLINE_VIDEO_MAX_BYTES = 20 * 1024 * 1024;

/** The media input of a long-media task, if the request has one. */
export function longMediaInput(request: NormalizedRequest): { input: string; kind: LongMediaPlan['kind'] } | undefined {
  const { inputs } = request;
  if (request.task === Task.Transcription && request.provider === Provider.OpenAI) {
    return { input: inputs.audio_url != null ? 'audio_url' : 'audio_base64', kind: 'audio' };
  }
  if (request.task === Task.MultimodalEmbedding && request.provider === Provider.Google) {
    if (inputs.video_url != null) return { input: 'video_url', kind: 'video' };
    if (inputs.video_base64 != null) return { input: 'video_base64', kind: 'video' };
  }
  return undefined;
}

/**
 * Decides, from ffprobe's answer, whether a job's audio or video goes to the provider as it is
 * (undefined) or in parts, and where the parts are cut. Bad media is refused here, before any
 * provider call: no audio track, no video stream, nothing decodable.
 */
export class LongMediaPlanner {
  constructor(
    private readonly config: GatewayConfig,
    private readonly tools: Ffmpeg,
  ) {}

  async plan(request: NormalizedRequest, kind: LongMediaPlan['kind'], file: MediaFile, signal: AbortSignal): Promise<LongMediaPlan | undefined> {
    const probe = await this.probe(kind, file, signal);
    if (!probe) return undefined;
    return kind === 'audio' ? this.audio(probe, file, signal) : this.video(request, probe, file);
  }

  /**
   * Without ffprobe, a file the provider takes as it is still goes through; a bigger one cannot.
   * A file whose bytes look like audio/video but that ffprobe cannot read goes through too when
   * it is small (the provider may know the format); anything else ffprobe refuses is a 400.
   */
  private async probe(kind: LongMediaPlan['kind'], file: MediaFile, signal: AbortSignal): Promise<MediaProbe | undefined> {
    const limit = kind === 'audio' ? OPENAI_TRANSCRIPTION_MAX_BYTES : VERTEX_INLINE_VIDEO_MAX_BYTES;
    try {
      return await this.tools.probe(file.path, signal);
    } catch (err) {
      if (err instanceof MediaError && /^(audio|video)\//.test(file.mime) && file.size <= limit) return undefined;
      if (!(err instanceof MediaToolMissingError)) throw err;
      if (file.size <= limit) return undefined;
      throw new GatewayError(ErrorType.ServiceUnavailable, `This ${kind} is ${file.size} bytes and must be cut first, but ${err.message}`, 'media_tools_missing', {
        variable: err.variable,
      });
    }
  }

  private async audio(probe: MediaProbe, file: MediaFile, signal: AbortSignal): Promise<LongMediaPlan | undefined> {
    if (!probe.hasAudio) throw new MediaError(`The file (${probe.format}) has no audio track to transcribe`, 'media_no_audio');
    const duration = probe.durationSec;
    if (duration <= 0) throw new MediaError('The audio has no duration that ffprobe can read (truncated or not audio)', 'media_unreadable');
    const { audioChunkSeconds: chunkSec, audioChunkOverlapSeconds: overlapSec } = this.config;
    // A video container is cut too, so that only its (compact) audio track is uploaded.
    const cut = file.size > OPENAI_TRANSCRIPTION_MAX_BYTES || duration > chunkSec || probe.hasVideo;
    if (!cut) return undefined;
    const silences = duration > chunkSec ? await this.tools.silences(file.path, signal) : [];
    const parts = planAudioChunks({ durationSec: duration, chunkSec, overlapSec, silences }).map(({ start, from, end }) => ({ start, from, end }));
    return { kind: 'audio', durationSec: duration, parts };
  }

  private video(request: NormalizedRequest, probe: MediaProbe, file: MediaFile): LongMediaPlan | undefined {
    if (!probe.hasVideo) throw new MediaError(`The file (${probe.format}) has no video stream to embed`, 'media_no_video');
    const duration = probe.durationSec;
    if (duration <= 0) throw new MediaError('The video has no duration that ffprobe can read (truncated or no frames)', 'media_no_video');
    const { parameters } = request;
    const from = num(parameters.start_offset_sec) ?? 0;
    const asked = num(parameters.end_offset_sec);
    if (asked !== undefined && asked <= from) {
      throw new GatewayError(ErrorType.BadRequest, `parameters.end_offset_sec (${asked}) must be greater than parameters.start_offset_sec (${from})`, 'invalid_video_segment', {
        start_offset_sec: from,
        end_offset_sec: asked,
      });
    }
    if (from >= duration) {
      throw new GatewayError(ErrorType.BadRequest, `parameters.start_offset_sec (${from}) is past the end of the video (${duration.toFixed(1)} s)`, 'invalid_video_segment', {
        start_offset_sec: from,
        duration_sec: duration,
      });
    }
    const to = Math.min(asked ?? duration, duration);
    if (to - from <= VERTEX_VIDEO_MAX_SECONDS && file.size <= VERTEX_INLINE_VIDEO_MAX_BYTES) return undefined;
    const windows = planVideoWindows({ fromSec: from, toSec: to, maxSec: VERTEX_VIDEO_MAX_SECONDS, intervalSec: num(parameters.interval_sec) });
    return { kind: 'video', durationSec: duration, parts: windows.map(({ start, end }) => ({ start, end })) };
  }
}

function num(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}
