/** One judged outcome of an entry: the similarity of the prompt it was compared with, and whether its answer was right. */
export interface Observation {
  similarity: number;
  correct: boolean;
  /** How many identical observations this one stands for (binned scope-wide counts). @defaultValue 1 */
  weight?: number;
}

/**
 * Every entry's observations start with these two, anchoring the curve: a prompt with nothing
 * in common (similarity 0) does not share the answer, an identical one (similarity 1) does.
 */
export const SEED_OBSERVATIONS: readonly Observation[] = [
  { similarity: 0, correct: false },
  { similarity: 1, correct: true },
];

/** A fitted P(correct | s) = sigmoid(b0 + g * s) with its estimated covariance. */
export interface LogisticFit {
  b0: number;
  g: number;
  /** Covariance of (b0, g): the inverse of the (penalised) observed information. */
  cov: [number, number, number];
  /** The data were (quasi-)separable: no finite maximum likelihood, the ridge fallback was used. */
  separable: boolean;
}

/** The decision threshold t = -b0 / g and its standard deviation by the delta method. */
export interface ThresholdEstimate {
  t: number;
  g: number;
  sd: number;
}

/**
 * Prior precision on the slope g when the data are separable: a Gaussian prior g ~ N(0, 1/λ)
 * keeps the estimate finite, and lets the slope grow (and the threshold's variance shrink) as
 * consistent observations accumulate. 0.01 is a prior sd of 10 similarity-logits per unit.
 */
export const SEPARABLE_SLOPE_PRECISION = 0.01;
/** Numerical floor on the ridge, so a near-singular information matrix still inverts. */
const MIN_RIDGE = 1e-9;
const MAX_ITERATIONS = 100;
const TOLERANCE = 1e-10;

export function sigmoid(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

/** True when some threshold puts every wrong observation at or below, and every right one at or above, it. */
export function isSeparable(observations: readonly Observation[]): boolean {
  let maxWrong = -Infinity;
  let minRight = Infinity;
  for (const o of observations) {
    if ((o.weight ?? 1) <= 0) continue;
    if (o.correct) minRight = Math.min(minRight, o.similarity);
    else maxWrong = Math.max(maxWrong, o.similarity);
  }
  return maxWrong <= minRight;
}

/**
 * Maximum-likelihood logistic regression of correctness on similarity by Newton-Raphson (IRLS).
 * Separable data have no finite maximum; then the slope gets the ridge above (a MAP estimate).
 */
export function fitLogistic(observations: readonly Observation[]): LogisticFit {
  const separable = isSeparable(observations);
  const ridge = separable ? SEPARABLE_SLOPE_PRECISION : MIN_RIDGE;
  let b0 = 0;
  let g = 0;
  let h00 = 0;
  let h01 = 0;
  let h11 = 0;
  for (let iter = 0; iter < MAX_ITERATIONS; iter++) {
    let g0 = 0;
    let g1 = -ridge * g;
    h00 = MIN_RIDGE;
    h01 = 0;
    h11 = ridge;
    for (const o of observations) {
      const s = o.similarity;
      const n = o.weight ?? 1;
      const p = sigmoid(b0 + g * s);
      const r = n * ((o.correct ? 1 : 0) - p);
      const w = n * p * (1 - p);
      g0 += r;
      g1 += r * s;
      h00 += w;
      h01 += w * s;
      h11 += w * s * s;
    }
    const det = h00 * h11 - h01 * h01;
    if (!(det > 0)) break;
    const d0 = (h11 * g0 - h01 * g1) / det;
    const d1 = (h00 * g1 - h01 * g0) / det;
    b0 += d0;
    g += d1;
    if (Math.abs(d0) + Math.abs(d1) < TOLERANCE) break;
  }
  // Covariance at the optimum: inverse of the information matrix H (recomputed there).
  ({ h00, h01, h11 } = information(observations, b0, g, ridge));
  const det = h00 * h11 - h01 * h01;
  const cov: [number, number, number] = det > 0 ? [h11 / det, -h01 / det, h00 / det] : [Infinity, 0, Infinity];
  return { b0, g, cov, separable };
}

function information(observations: readonly Observation[], b0: number, g: number, ridge: number): { h00: number; h01: number; h11: number } {
  let h00 = MIN_RIDGE;
  let h01 = 0;
  let h11 = ridge;
  for (const o of observations) {
    const p = sigmoid(b0 + g * o.similarity);
    const w = (o.weight ?? 1) * p * (1 - p);
    h00 += w;
    h01 += w * o.similarity;
    h11 += w * o.similarity * o.similarity;
  }
  return { h00, h01, h11 };
}

/**
 * t = -b0/g, Var(t) ≈ ∇t Σ ∇tᵀ with ∇t = (-1/g, b0/g²). A slope that is not positive (the data
 * say nothing or the opposite) has no usable threshold: sd is infinite.
 */
export function thresholdOf(fit: LogisticFit): ThresholdEstimate {
  const { b0, g, cov } = fit;
  if (!(g > 0) || !Number.isFinite(g)) return { t: Infinity, g, sd: Infinity };
  const t = -b0 / g;
  const d0 = -1 / g;
  const d1 = b0 / (g * g);
  const variance = d0 * d0 * cov[0] + 2 * d0 * d1 * cov[1] + d1 * d1 * cov[2];
  return { t, g, sd: Math.sqrt(Math.max(0, variance)) };
}
