/** What a request asks a model to do; chosen from the model family and the inputs (DESIGN.md). */
export enum Task {
  Chat = 'chat',
  Embedding = 'embedding',
  Transcription = 'transcription',
  MultimodalEmbedding = 'multimodal_embedding',
  /** A custom or builtin plugin (inference_name / feature_uri); its `data` is what the plugin returns. */
  Plugin = 'plugin',
}
