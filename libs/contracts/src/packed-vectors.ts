import { RawInferenceResponse } from './raw-inference';

/**
 * Embeddings travel between worker and API as float32 (base64), not as JSON numbers: a
 * 3072-d vector is 12 KB of float32 (16 KB base64) against ~30 KB of JSON text, in the job's
 * return value, the completion notice and a split job's children. The client still gets the
 * spec's JSON numbers: the API unpacks before answering (`unpackResult`).
 *
 * Packed form of `data`: `{ embedding_f32: <base64>, dimensions }` for `text`, and
 * `{ embeddings_f32: <base64 of every row back to back>, count, dimensions }` for `texts`.
 * A vector is packed only when float32 holds it exactly (OpenAI's vectors are float32), so
 * packing never changes a number a client sees.
 */
export interface PackedEmbeddingData {
  embedding_f32?: string;
  embeddings_f32?: string;
  count?: number;
  dimensions: number;
}

/** Float32 little-endian bytes of a vector. */
export function vectorToBytes(vector: ArrayLike<number>): Buffer {
  const buf = Buffer.allocUnsafe(vector.length * 4);
  for (let i = 0; i < vector.length; i++) buf.writeFloatLE(vector[i], i * 4);
  return buf;
}

/** The vectors of `count` rows stored back to back in `bytes`. */
export function bytesToVectors(bytes: Buffer, count: number): number[][] {
  const dims = count > 0 ? bytes.length / 4 / count : 0;
  const out: number[][] = [];
  for (let r = 0; r < count; r++) {
    const row = new Array<number>(dims);
    for (let i = 0; i < dims; i++) row[i] = bytes.readFloatLE((r * dims + i) * 4);
    out.push(row);
  }
  return out;
}

function isExactFloat32(vector: unknown): vector is number[] {
  if (!Array.isArray(vector)) return false;
  for (const v of vector) if (typeof v !== 'number' || Math.fround(v) !== v) return false;
  return true;
}

/** The response with its embedding(s) packed as float32, when that is lossless; otherwise as it was. */
export function packResult(response: RawInferenceResponse): RawInferenceResponse {
  const data = response.data as Record<string, unknown> | undefined;
  if (!data || typeof data !== 'object') return response;
  const { embedding, embeddings, ...rest } = data;
  if (embedding !== undefined && embeddings === undefined && isExactFloat32(embedding)) {
    return { ...response, data: { ...rest, embedding_f32: vectorToBytes(embedding).toString('base64') } };
  }
  if (embeddings !== undefined && embedding === undefined && Array.isArray(embeddings) && embeddings.length > 0) {
    const rows = embeddings as unknown[];
    const dims = Array.isArray(rows[0]) ? (rows[0] as unknown[]).length : -1;
    if (!rows.every((r) => isExactFloat32(r) && r.length === dims)) return response;
    const bytes = Buffer.concat((rows as number[][]).map(vectorToBytes));
    return { ...response, data: { ...rest, embeddings_f32: bytes.toString('base64'), count: rows.length } };
  }
  return response;
}

/** The response as a client sees it: packed vectors back to JSON numbers. Anything else passes through. */
export function unpackResult<T extends RawInferenceResponse | undefined>(response: T): T {
  const data = response?.data as (PackedEmbeddingData & Record<string, unknown>) | undefined;
  if (!response || !data || typeof data !== 'object') return response;
  if (typeof data.embedding_f32 === 'string') {
    const { embedding_f32, ...rest } = data;
    return { ...response, data: { ...rest, embedding: bytesToVectors(Buffer.from(embedding_f32, 'base64'), 1)[0] } };
  }
  if (typeof data.embeddings_f32 === 'string') {
    const { embeddings_f32, count, ...rest } = data;
    return { ...response, data: { ...rest, embeddings: bytesToVectors(Buffer.from(embeddings_f32, 'base64'), count ?? 0) } };
  }
  return response;
}
