import { Provider } from './queue-name';
import { Task } from './task';

/** The spec's RawInferenceRequest, as it arrives on the wire. */
export interface RawInferenceRequest {
  provider?: string | null;
  model?: string | null;
  inference_name?: string | null;
  feature_uri?: string | null;
  inputs: Record<string, unknown>;
  parameters?: Record<string, unknown> | null;
  enable_semantic_cache?: boolean;
  cache_delta?: number | null;
}

export interface TokensUsed {
  prompt: number;
  completion: number;
  total: number;
}

/** The spec's RawInferenceResponse. `data` is shaped by task (DESIGN.md, "`data` by task"). */
export interface RawInferenceResponse<D = Record<string, unknown>> {
  data: D;
  provider: string;
  model: string;
  tokens_used?: TokensUsed | null;
  latency_ms: number;
  cached: boolean;
}

export interface ChatData {
  text: string;
  finish_reason: string;
  parsed?: unknown;
}

export interface EmbeddingData {
  embedding: number[];
  dimensions: number;
}

export interface EmbeddingsData {
  embeddings: number[][];
  dimensions: number;
}

export interface TranscriptionSegment {
  start: number;
  end: number;
  text: string;
}

export interface TranscriptionData {
  text: string;
  language?: string;
  duration?: number;
  segments: TranscriptionSegment[];
}

/**
 * A large inline input (base64 media) moved out of the job into its own Redis key, so that
 * BullMQ does not copy it into every event and every job read. The bytes are stored decoded.
 */
export interface BlobRef {
  $blob: string;
  bytes: number;
}

export function isBlobRef(value: unknown): value is BlobRef {
  return typeof value === 'object' && value !== null && typeof (value as BlobRef).$blob === 'string';
}

/**
 * `provider` of a request served by a plugin (inference_name / feature_uri mode): the response
 * says `"provider": "plugin"` and `"model": "<inference_name>"`, so a feature URI shows what it
 * resolved to.
 */
export const PLUGIN_PROVIDER = 'plugin';

/** Who serves a request: a provider, or a plugin on the plugins queue. */
export type RequestProvider = Provider | typeof PLUGIN_PROVIDER;

/** The plugin (and which of its outputs) a plugin-mode request runs. */
export interface PluginTarget {
  /** `name_version` with dots as underscores, e.g. `my_text_embedder_1_0_0`. */
  inferenceName: string;
  name: string;
  version: string;
  /** The output a feature URI named, or the plugin's only output; absent for a multi-output plugin named by inference_name. */
  output?: string;
}

/** A request after validation: mode resolved, task chosen, big blobs moved out. */
export interface NormalizedRequest {
  provider: RequestProvider;
  model: string;
  task: Task;
  inputs: Record<string, unknown>;
  parameters: Record<string, unknown>;
  /** Set exactly when `provider` is PLUGIN_PROVIDER. */
  plugin?: PluginTarget;
}

/** The blob keys a request's inputs point at (to delete them when the job ends). */
export function blobRefsOf(request: NormalizedRequest): BlobRef[] {
  return Object.values(request.inputs).filter(isBlobRef);
}
