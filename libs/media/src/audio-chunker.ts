/**
 * Where to cut long audio for transcription, and how to put the transcripts back together.
 * Pure functions: ffmpeg does the cutting (ffmpeg.ts), the worker the fan-out.
 */

/** One chunk: the audio sent is [start, end]; the part it answers for is [from, end]. */
export interface AudioChunk {
  index: number;
  /** Where the sent audio begins: `from` minus the overlap (0 for the first chunk). */
  start: number;
  /** Where this chunk's own part begins (the previous chunk's end). */
  from: number;
  end: number;
}

export interface AudioChunkPlanInput {
  durationSec: number;
  /** Target length of a chunk, in s. */
  chunkSec: number;
  /** Audio each chunk repeats from before its own part, in s. */
  overlapSec: number;
  /** Silent stretches [start, end] in s (ffmpeg silencedetect); cuts go to their middle when near. */
  silences?: Array<[number, number]>;
}

/** A cut moves back at most this share of a chunk to land in a silence. */
const SILENCE_SEARCH_SHARE = 0.2;
/** A last chunk shorter than this share of a chunk is folded into the one before. */
const MIN_LAST_SHARE = 0.25;

export function planAudioChunks({ durationSec, chunkSec, overlapSec, silences = [] }: AudioChunkPlanInput): AudioChunk[] {
  const cuts = [0];
  const mids = silences.map(([s, e]) => (s + e) / 2).sort((a, b) => a - b);
  for (;;) {
    const prev = cuts[cuts.length - 1];
    const target = prev + chunkSec;
    if (durationSec - target < chunkSec * MIN_LAST_SHARE) break;
    // The latest silence in the search window: the chunk stays as long as possible.
    const lowest = target - chunkSec * SILENCE_SEARCH_SHARE;
    const quiet = mids.filter((m) => m > lowest && m <= target).pop();
    cuts.push(quiet ?? target);
  }
  return cuts.map((from, index) => ({
    index,
    from,
    start: Math.max(0, from - overlapSec),
    end: index + 1 < cuts.length ? cuts[index + 1] : durationSec,
  }));
}

export interface TranscriptSegment {
  start: number;
  end: number;
  text: string;
}

/** A chunk's transcription as the provider answered (times relative to the chunk's audio). */
export interface ChunkTranscript {
  text: string;
  language?: string;
  segments?: TranscriptSegment[];
}

export interface MergedTranscript {
  text: string;
  language?: string;
  duration: number;
  segments: TranscriptSegment[];
}

/**
 * One transcript for the whole file: segment times made absolute, and each segment kept by the
 * one chunk whose own part holds its midpoint, so the overlap is transcribed twice but read once.
 * A chunk answered without segments (json-only models) contributes its text as it is.
 */
export function mergeTranscripts(chunks: AudioChunk[], answers: ChunkTranscript[], durationSec: number): MergedTranscript {
  const segments: TranscriptSegment[] = [];
  const texts: string[] = [];
  chunks.forEach((chunk, i) => {
    const answer = answers[i];
    if (!answer.segments || answer.segments.length === 0) {
      if (answer.text.trim()) texts.push(answer.text.trim());
      return;
    }
    const own: string[] = [];
    for (const s of answer.segments) {
      const start = round(s.start + chunk.start);
      const end = round(Math.min(s.end + chunk.start, chunk.end));
      const mid = (start + end) / 2;
      const first = chunk.index === 0;
      if ((!first && mid < chunk.from) || mid >= chunk.end) continue;
      const prev = segments[segments.length - 1];
      segments.push({ start: prev ? Math.max(start, prev.end) : start, end: Math.max(end, prev ? prev.end : end), text: s.text });
      own.push(s.text.trim());
    }
    const text = own.filter(Boolean).join(' ');
    if (text) texts.push(text);
  });
  return { text: texts.join(' '), language: answers.find((a) => a.language)?.language, duration: durationSec, segments };
}

function round(sec: number): number {
  return Math.round(sec * 1000) / 1000;
}
