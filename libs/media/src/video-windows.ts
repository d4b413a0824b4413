/**
 * Windows of a long video for an embedding model that covers a limited span per request
 * (Vertex `multimodalembedding`: 120 s), and the merge of their segments. Pure functions.
 */

export interface VideoWindow {
  index: number;
  /** Absolute offsets in the source video, in s. */
  start: number;
  end: number;
}

export interface VideoWindowPlanInput {
  /** The span to embed, in s (the request's start/end offsets, within the video). */
  fromSec: number;
  toSec: number;
  /** Longest span one request covers, in s. */
  maxSec: number;
  /** The requested segment interval, in s: windows are a whole number of intervals long. */
  intervalSec?: number;
}

export function planVideoWindows({ fromSec, toSec, maxSec, intervalSec }: VideoWindowPlanInput): VideoWindow[] {
  // Whole intervals per window: segments then fall on the same grid as one long request's would.
  const step = intervalSec && intervalSec > 0 && intervalSec <= maxSec ? Math.floor(maxSec / intervalSec) * intervalSec : maxSec;
  const windows: VideoWindow[] = [];
  for (let start = fromSec, index = 0; start < toSec - 1e-6; start += step, index++) {
    windows.push({ index, start, end: Math.min(start + step, toSec) });
  }
  return windows;
}

export interface VideoSegment {
  start_offset_sec: number;
  end_offset_sec: number;
  embedding: number[];
}

/** Each window's segments (offsets relative to its clip) made absolute, in window order. */
export function mergeVideoSegments(windows: VideoWindow[], answers: VideoSegment[][]): VideoSegment[] {
  return windows.flatMap((w, i) =>
    answers[i].map((s) => ({
      ...s,
      start_offset_sec: round(s.start_offset_sec + w.start),
      end_offset_sec: round(Math.min(s.end_offset_sec + w.start, w.end)),
    })),
  );
}

function round(sec: number): number {
  return Math.round(sec * 1000) / 1000;
}
