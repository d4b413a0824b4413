import { Inject, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { readFile, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { Job, UnrecoverableError, WaitingChildrenError } from 'bullmq';
import {
  encodeFailure,
  ErrorType,
  InferenceJobData,
  JobName,
  LongMediaPlan,
  NormalizedRequest,
  RawInferenceResponse,
  TokensUsed,
} from '@lib/contracts';
import { GATEWAY_CONFIG, GatewayConfig } from '@lib/config';
import { ChunkTranscript, Ffmpeg, MediaError, mergeTranscripts, mergeVideoSegments, removeQuietly, VideoSegment } from '@lib/media';
import { MediaFile } from '@lib/providers';
import { BlobStore, inferenceJobOptions } from '@lib/queue';
import { ChildJobQueues } from './child-job-queues';
import { JobMedia } from './job-media';
import { LongMediaPlanner, longMediaInput } from './long-media-planner';

/** Child ids: `<parent id>-m<index>of<total>` (the total lets a child report the parent's progress). */
const CHILD_ID = /-m(\d+)of(\d+)$/;
/** A cut part smaller than this, in bytes, holds no media: the source ended before its header said. */
const EMPTY_PART_BYTES = 1_024;
/** A part may come out this much shorter than planned (frame and packet rounding), in s, or 2 %. */
const TRUNCATION_SLACK_SEC = 1.5;
/** Parts cut at once: an ffmpeg encode keeps about one core busy; two lanes use a small box fully without starving the rest. */
const CUT_LANES = Math.min(2, availableParallelism());

/**
 * Long audio (transcription) and long video (Vertex multimodal embedding). The parent job
 * downloads the file once, probes it with ffprobe, and when it is over the provider's limits
 * cuts it with ffmpeg into parts (audio chunks at silences with a small overlap, video windows
 * of whole intervals), each stored as a blob and enqueued as an ordinary child job on the same
 * queue (`<id>-m<i>of<n>`): children pass the shared rate limits, retries and cancel on their
 * own. The parent then waits in BullMQ's waiting-children state (no worker slot held) and, when
 * the last child ends, runs again and merges the answers into one result with absolute times.
 * Media the provider takes as it is passes through (the downloaded file is reused).
 */
@Injectable()
export class LongMediaService {
  private readonly tools: Ffmpeg;
  private readonly planner: LongMediaPlanner;

  constructor(
    @Inject(GATEWAY_CONFIG) private readonly config: GatewayConfig,
    private readonly blobs: BlobStore,
    private readonly queues: ChildJobQueues,
  ) {
    this.tools = new Ffmpeg(config.ffmpegPath, config.ffprobePath);
    this.planner = new LongMediaPlanner(config, this.tools);
  }

  handles(job: Job<InferenceJobData>): boolean {
    return longMediaInput(job.data.request) !== undefined && !CHILD_ID.test(job.id!);
  }

  /**
   * The merged result, or undefined when the media goes to the adapter as it is (its file is then
   * in `media`). Throws WaitingChildrenError while the parts run.
   */
  async process(job: Job<InferenceJobData, RawInferenceResponse>, token: string | undefined, media: JobMedia, signal: AbortSignal): Promise<RawInferenceResponse | undefined> {
    if (job.data.longMedia) return this.merge(job, token);
    const { input, kind } = longMediaInput(job.data.request)!;
    let downloaded = 0;
    const file = await media.file(input, (bytes) => {
      downloaded = bytes;
      void job.updateProgress({ phase: 'downloading', bytes_downloaded: bytes }).catch(() => undefined);
    });
    const plan = await this.planner.plan(job.data.request, kind, file, signal);
    if (!plan) return undefined;
    try {
      await this.fanOut(job, plan, input, file, downloaded || file.size, signal);
    } catch (err) {
      // Bad media found late (a truncated file) or a cancel: parts not yet started never run.
      await job.removeUnprocessedChildren().catch(() => undefined);
      throw err;
    } finally {
      await media.cleanup();
    }
    return this.merge(job, token);
  }

  /** Tells the parent of a part how many parts are done (this one included); best effort. */
  async childDone(job: Job<InferenceJobData>): Promise<void> {
    const m = CHILD_ID.exec(job.id!);
    if (!m || !job.parent?.id) return;
    const parent = await Job.fromId<InferenceJobData>(this.queues.of(job), job.parent.id);
    // While the parent still cuts, its own progress (parts cut) is the one to show.
    if (!parent?.data.longMedia) return;
    await this.reportParts(parent, Number(m[2]), 1);
  }

  /** `running`: parts that have finished but are not counted by BullMQ yet (the caller's own). */
  private async reportParts(parent: Job<InferenceJobData>, total: number, running: number): Promise<void> {
    const counts = await parent.getDependenciesCount({ processed: true, ignored: true });
    const done = Math.min(total, (counts.processed ?? 0) + (counts.ignored ?? 0) + running);
    await parent.updateProgress({ phase: 'parts', parts_done: done, parts_total: total });
  }

  private async fanOut(job: Job<InferenceJobData>, plan: LongMediaPlan, input: string, file: MediaFile, bytes: number, signal: AbortSignal): Promise<void> {
    const total = plan.parts.length;
    let next = 0;
    let done = 0;
    await job.updateProgress({ phase: 'splitting', bytes_downloaded: bytes, parts_cut: 0, parts_total: total });
    const lane = async (): Promise<void> => {
      try {
        while (next < total) {
          await this.enqueuePart(job, plan, next++, input, file, signal);
          await job.updateProgress({ phase: 'splitting', bytes_downloaded: bytes, parts_cut: ++done, parts_total: total });
        }
      } catch (err) {
        next = total; // the other lane stops after its current part
        throw err;
      }
    };
    // Settled, not raced: the caller removes the file and the unstarted parts only when no lane still cuts.
    const lanes = await Promise.allSettled(Array.from({ length: Math.min(CUT_LANES, total) }, lane));
    const failed = lanes.find((l): l is PromiseRejectedResult => l.status === 'rejected');
    if (failed) throw failed.reason;
    // Recorded last: a re-run after a crash before this point cuts again (child ids are fixed, so nothing is added twice).
    await job.updateData({ ...job.data, longMedia: plan });
    await this.reportParts(job, total, 0);
  }

  /** Cuts part `i`, stores it as a blob and enqueues its child job: transcribed while later parts are still cut. */
  private async enqueuePart(job: Job<InferenceJobData>, plan: LongMediaPlan, i: number, input: string, file: MediaFile, signal: AbortSignal): Promise<void> {
    const part = plan.parts[i];
    const id = `${job.id}-m${i}of${plan.parts.length}`;
    const data = await this.cut(plan, part, file, signal);
    const childInput = plan.kind === 'audio' ? 'audio_base64' : 'video_base64';
    const ref = await this.blobs.put(id, childInput, data);
    const request = childRequest(job.data.request, input, childInput, ref, plan.kind, part.end - part.start);
    // Canceled while this part was stored: not enqueued (a part that still slips in ends at its start, on its parent's cancel flag).
    if (signal.aborted) {
      await this.blobs.delete([ref]).catch(() => undefined);
      signal.throwIfAborted();
    }
    await this.queues.of(job).add(JobName.Inference, { request, receivedAt: job.data.receivedAt, requestId: job.data.requestId } satisfies InferenceJobData, {
      ...inferenceJobOptions(this.config, id),
      parent: { id: job.id!, queue: job.queueQualifiedName },
      ignoreDependencyOnFailure: true,
    });
  }

  private async cut(plan: LongMediaPlan, part: LongMediaPlan['parts'][number], file: MediaFile, signal: AbortSignal): Promise<Buffer> {
    // `dl-` like downloads: a worker that crashes mid-cut leaves files the start-up sweep removes.
    const out = path.join(this.config.mediaTmpDir, `dl-${randomUUID()}.${plan.kind === 'audio' ? 'mp3' : 'mp4'}`);
    try {
      const length = part.end - part.start;
      if (plan.kind === 'audio') await this.tools.cutAudio(file.path, part.start, length, out, signal);
      else await this.tools.cutVideo(file.path, part.start, length, out, signal);
      // A part shorter than planned: the data ends before the container's header says it does.
      const got = (await stat(out)).size < EMPTY_PART_BYTES ? 0 : (await this.tools.probe(out, signal)).durationSec;
      if (got < length - Math.max(TRUNCATION_SLACK_SEC, length * 0.02)) {
        throw new MediaError(
          `The ${plan.kind} ends near ${(part.start + got).toFixed(1)} s although its header says ${plan.durationSec.toFixed(1)} s: the file is truncated`,
          'media_truncated',
          false,
          { duration_sec: round(plan.durationSec), readable_until_sec: round(part.start + got) },
        );
      }
      return await readFile(out);
    } finally {
      await removeQuietly(out);
    }
  }

  /** Waits for the parts (WaitingChildrenError), then one result: the first failed part fails the job with its error. */
  private async merge(job: Job<InferenceJobData, RawInferenceResponse>, token: string | undefined): Promise<RawInferenceResponse> {
    if (!token) throw new Error('a long media job needs its lock token');
    if (await job.moveToWaitingChildren(token)) throw new WaitingChildrenError();
    const plan = job.data.longMedia!;
    const failures = Object.entries(await job.getIgnoredChildrenFailures()).sort(([a], [b]) => indexOf(a) - indexOf(b));
    if (failures.length > 0) {
      const reason = failures[0][1];
      throw new UnrecoverableError(
        reason.startsWith('gw-failure:') ? reason : encodeFailure({ error: { type: ErrorType.Internal, message: `Part ${indexOf(failures[0][0])} of the media failed inside the gateway`, code: 'internal_error' }, retryable: false }),
      );
    }
    const parts = new Array<RawInferenceResponse | undefined>(plan.parts.length);
    for (const [key, value] of Object.entries(await job.getChildrenValues<RawInferenceResponse>())) parts[indexOf(key)] = value;
    const missing = parts.findIndex((p) => !p);
    if (missing >= 0 || parts.length === 0) {
      throw new UnrecoverableError(encodeFailure({ error: { type: ErrorType.Internal, message: `Part ${missing} of the media has no result`, code: 'internal_error' }, retryable: false }));
    }
    const answers = parts as RawInferenceResponse[];
    await job.updateProgress({ phase: 'merging', parts_done: answers.length, parts_total: answers.length }).catch(() => undefined);
    const { request, receivedAt } = job.data;
    return {
      data: plan.kind === 'audio' ? mergeAudio(plan, answers) : mergeVideo(plan, answers),
      provider: request.provider,
      model: request.model,
      tokens_used: sumUsage(answers),
      latency_ms: Date.now() - receivedAt,
      cached: false,
    };
  }

}

/** The parent's request with its media swapped for the part (and, for video, the part's own span). */
function childRequest(parent: NormalizedRequest, input: string, childInput: string, ref: object, kind: LongMediaPlan['kind'], length: number): NormalizedRequest {
  const inputs = { ...parent.inputs };
  delete inputs[input];
  inputs[childInput] = ref;
  const parameters = { ...parent.parameters };
  if (kind === 'video') {
    parameters.start_offset_sec = 0;
    parameters.end_offset_sec = length;
  }
  return { ...parent, inputs, parameters };
}

function mergeAudio(plan: LongMediaPlan, answers: RawInferenceResponse[]): Record<string, unknown> {
  const chunks = plan.parts.map((p, index) => ({ index, start: p.start, from: p.from ?? p.start, end: p.end }));
  const merged = mergeTranscripts(chunks, answers.map((a) => a.data as unknown as ChunkTranscript), round(plan.durationSec));
  return { text: merged.text, language: merged.language, duration: merged.duration, segments: merged.segments };
}

function mergeVideo(plan: LongMediaPlan, answers: RawInferenceResponse[]): Record<string, unknown> {
  const windows = plan.parts.map((p, index) => ({ index, start: p.start, end: p.end }));
  const segments = mergeVideoSegments(windows, answers.map((a) => (a.data.segments ?? []) as VideoSegment[]));
  return { segments, dimensions: answers[0].data.dimensions ?? segments[0]?.embedding.length };
}

function sumUsage(answers: RawInferenceResponse[]): TokensUsed | null {
  const used = answers.map((a) => a.tokens_used).filter((u): u is TokensUsed => !!u);
  if (used.length === 0) return null;
  return used.reduce((s, u) => ({ prompt: s.prompt + u.prompt, completion: s.completion + u.completion, total: s.total + u.total }), { prompt: 0, completion: 0, total: 0 });
}

function indexOf(key: string): number {
  return Number(CHILD_ID.exec(key)?.[1] ?? -1);
}

function round(sec: number): number {
  return Math.round(sec * 1000) / 1000;
}
