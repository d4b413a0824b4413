'use strict';
/**
 * hash_text_embedder@1.0.0: text embeddings without a model.
 *
 * Each text is normalised (Unicode NFKC, optionally lower-cased), cut into words (letters and
 * digits of any script), and every word and every character n-gram of the word padded with
 * "<" and ">" is hashed (FNV-1a) into one of 256 buckets with a hashed sign. The counts are
 * dampened (1 + log tf) and the vector L2-normalised, so the cosine of two texts grows with
 * the n-grams they share: "colour" and "color" are close, "colour" and "banana" are not.
 * Deterministic: the same text and parameters always give the same vector.
 */

const DIMENSIONS = 256;
const WORD = /[\p{L}\p{N}]+/gu;

/** FNV-1a over UTF-16 code units, 32-bit. */
function fnv1a(text, seed) {
  let h = seed >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function features(text, { min_n, max_n, lowercase }) {
  let normal = text.normalize('NFKC');
  if (lowercase) normal = normal.toLowerCase();
  const out = [];
  for (const word of normal.match(WORD) ?? []) {
    out.push(`w:${word}`);
    const padded = `<${word}>`;
    const chars = Array.from(padded);
    for (let n = min_n; n <= max_n; n++) {
      for (let i = 0; i + n <= chars.length; i++) out.push(`c:${chars.slice(i, i + n).join('')}`);
    }
  }
  return out;
}

function embed(text, parameters) {
  const counts = new Float64Array(DIMENSIONS);
  for (const feature of features(text, parameters)) {
    const bucket = fnv1a(feature, 0x811c9dc5) % DIMENSIONS;
    const sign = fnv1a(feature, 0x01234567) & 1 ? 1 : -1;
    counts[bucket] += sign;
  }
  let norm = 0;
  const vector = new Array(DIMENSIONS);
  for (let i = 0; i < DIMENSIONS; i++) {
    const c = counts[i];
    const v = c === 0 ? 0 : Math.sign(c) * (1 + Math.log(Math.abs(c)));
    vector[i] = v;
    norm += v * v;
  }
  if (norm > 0) {
    const inv = 1 / Math.sqrt(norm);
    for (let i = 0; i < DIMENSIONS; i++) vector[i] *= inv;
  }
  return vector;
}

/**
 * @param {{ text?: string, texts?: string[] }} inputs validated against plugin.json
 * @param {{ min_n: number, max_n: number, lowercase: boolean }} parameters defaults filled in
 * @param {{ signal: AbortSignal, progress(value: number): void, logger: { debug(...a: unknown[]): void } }} context
 */
async function infer(inputs, parameters, context) {
  if (parameters.min_n > parameters.max_n) {
    throw Object.assign(new Error(`parameters.min_n (${parameters.min_n}) must not exceed parameters.max_n (${parameters.max_n})`), { status: 400 });
  }
  if (typeof inputs.text === 'string') return { embedding: embed(inputs.text, parameters), dimensions: DIMENSIONS };
  const embeddings = [];
  for (let i = 0; i < inputs.texts.length; i++) {
    if (context.signal.aborted) throw new Error('canceled');
    embeddings.push(embed(inputs.texts[i], parameters));
    if ((i + 1) % 64 === 0) context.progress((i + 1) / inputs.texts.length);
  }
  context.logger.debug(`embedded ${inputs.texts.length} texts`);
  return { embeddings, dimensions: DIMENSIONS };
}

module.exports = { infer };
