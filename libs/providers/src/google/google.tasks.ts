import { Task } from '@lib/contracts';
import { chatTaskSpec, TaskSpec } from '../task-inputs';

export const GOOGLE_CHAT: TaskSpec = chatTaskSpec({
  temperature: { kind: 'number', min: 0, max: 2 },
  top_k: { kind: 'integer', min: 1 },
});

/**
 * Vertex `multimodalembedding`: one input per request. `dimension` is checked against the sizes
 * Vertex offers by the adapter (a kind alone cannot say "one of"); the video window and interval
 * are Vertex's `videoSegmentConfig`, whose interval may not go below 4 s.
 */
export const GOOGLE_MULTIMODAL_EMBEDDING: TaskSpec = {
  task: Task.MultimodalEmbedding,
  exactlyOne: [['text', 'image_url', 'image_base64', 'video_url', 'video_base64']],
  inputs: { text: 'string', image_url: 'url', image_base64: 'base64', video_url: 'url', video_base64: 'base64' },
  parameters: {
    dimension: { kind: 'integer' },
    start_offset_sec: { kind: 'number', min: 0 },
    end_offset_sec: { kind: 'number', min: 0 },
    interval_sec: { kind: 'number', min: 4 },
  },
};

/** The sizes Vertex gives text and image embeddings; video embeddings are always the last. */
export const MULTIMODAL_EMBEDDING_DIMENSIONS = [128, 256, 512, 1408] as const;
export const MULTIMODAL_VIDEO_DIMENSION = 1408;

const MULTIMODAL_EMBEDDING_PREFIX = 'multimodalembedding';

/** The family decides the task: `multimodalembedding*` embeds, every other model is a Gemini chat model. */
export function googleTaskSpec(model: string): TaskSpec {
  return model.toLowerCase().startsWith(MULTIMODAL_EMBEDDING_PREFIX) ? GOOGLE_MULTIMODAL_EMBEDDING : GOOGLE_CHAT;
}

/**
 * The publisher model id Vertex is called with. Vertex names `multimodalembedding` only with a
 * version, so a bare name gets the one stable version (`@001`); anything else passes as given.
 */
export function vertexModelId(model: string): string {
  return model.toLowerCase() === MULTIMODAL_EMBEDDING_PREFIX ? `${MULTIMODAL_EMBEDDING_PREFIX}@001` : model;
}
