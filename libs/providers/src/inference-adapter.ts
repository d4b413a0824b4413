import { NormalizedRequest, Provider, Task, TokensUsed } from '@lib/contracts';

/** One media input made available to an adapter, downloaded or decoded by the worker. */
export interface MediaBytes {
  data: Buffer;
  mime: string;
}

export interface MediaFile {
  path: string;
  size: number;
  mime: string;
  ext: string;
}

/** How an adapter reaches the media inputs of its job; the worker owns download and clean-up. */
export interface MediaSource {
  /** An input held in memory (images): base64 decoded, blob read or URL downloaded. */
  bytes(input: string): Promise<MediaBytes>;
  /** An input as a temp file (audio, video); removed by the worker after the job. */
  file(input: string): Promise<MediaFile>;
}

/** The media of a call the gateway makes for itself with text only (`who`: named if a read happens, which would be a bug). */
export function noMedia(who: string): MediaSource {
  const refuse = () => Promise.reject(new Error(`${who} reads no media`));
  return { bytes: refuse, file: refuse };
}

export interface AdapterContext {
  /** Aborted when the job is canceled or the worker shuts down. */
  signal: AbortSignal;
  media: MediaSource;
  /** Reports how far a long job has come (0-100, or an object); shown as the job's `progress`. */
  progress?: (progress: number | object) => void;
}

export interface AdapterResult {
  data: Record<string, unknown>;
  tokensUsed?: TokensUsed;
}

/** Every provider sits behind this: the worker calls `run`, nothing else. */
export interface InferenceAdapter {
  readonly provider: Provider;
  readonly tasks: readonly Task[];
  run(request: NormalizedRequest, ctx: AdapterContext): Promise<AdapterResult>;
  /** Releases connections, if the adapter holds any. */
  close?(): Promise<void>;
}
