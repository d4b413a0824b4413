import { normalQuantile } from './normal-quantile';
import { fitLogistic, isSeparable, Observation, SEED_OBSERVATIONS, sigmoid, thresholdOf, ThresholdEstimate } from './logistic-fit';

/**
 * The vCache decision (Schroeder et al., "vCache: Verified Semantic Prompt Caching", 2025):
 * each cached entry learns from its own judged outcomes where its similarity threshold lies,
 * and a request near it is answered from cache with a probability chosen so that the chance of
 * a wrong cached answer stays at or under the user's delta. Re-implemented from the paper's
 * description; no code of the paper's is used.
 */

/** Real observations an entry needs before its curve is trusted; until then every request explores. */
export const MIN_OBSERVATIONS = 6;

/** The eps over which the exploration probability is minimised (confidence levels 1 - eps). */
export const EPS_GRID: readonly number[] = [0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5];
const Z_GRID = EPS_GRID.map((eps) => normalQuantile(1 - eps));

/**
 * tau(eps) = 1 - delta / (1 - alpha(eps)), alpha(eps) = (1 - eps) * sigmoid(g * (s - t'(eps))),
 * t'(eps) = t + z(1 - eps) * sd; the probability of exploring is min over eps of tau, in [0, 1].
 * alpha(eps) is a bound, holding with confidence 1 - eps, on the chance that the cached answer
 * is right at similarity s; exploring with probability tau keeps (1 - tau)(1 - alpha) <= delta.
 */
export function explorationProbability(estimate: ThresholdEstimate, similarity: number, delta: number, grid: readonly number[] = EPS_GRID): number {
  if (!(estimate.g > 0) || !Number.isFinite(estimate.t) || !Number.isFinite(estimate.sd)) return 1;
  let best = 1;
  for (let i = 0; i < grid.length; i++) {
    const eps = grid[i];
    const z = grid === EPS_GRID ? Z_GRID[i] : normalQuantile(1 - eps);
    const tPrime = estimate.t + z * estimate.sd;
    const alpha = (1 - eps) * sigmoid(estimate.g * (similarity - tPrime));
    const miss = 1 - alpha;
    const tau = miss <= 0 ? -Infinity : 1 - delta / miss;
    if (tau < best) best = tau;
  }
  return Math.min(1, Math.max(0, best));
}

/**
 * The fallback for separable observations, where the logistic fit has no finite maximum and
 * the delta method's variance means nothing. P(correct | s) is assumed non-decreasing in s
 * (the logistic model's own assumption), so k right answers seen at similarities <= s are k
 * draws each at most as likely as one at s: P(correct | s) >= eps^(1/k) with confidence
 * 1 - eps. alpha(eps) = (1 - eps) * eps^(1/k), tau as above. A prompt further away than every
 * right answer seen (k = 0), or not above every wrong one, explores.
 */
export function separableExplorationProbability(observations: readonly Observation[], similarity: number, delta: number, grid: readonly number[] = EPS_GRID): number {
  let k = 0;
  for (const o of observations) {
    if (!o.correct && o.similarity >= similarity) return 1;
    if (o.correct && o.similarity <= similarity) k++;
  }
  if (k === 0) return 1;
  let best = 1;
  for (const eps of grid) {
    const alpha = (1 - eps) * Math.pow(eps, 1 / k);
    const tau = 1 - delta / (1 - alpha);
    if (tau < best) best = tau;
  }
  return Math.min(1, Math.max(0, best));
}

/** Scope-wide observations a pooled curve needs before it stands in for an entry's separable data. */
export const MIN_SCOPE_OBSERVATIONS = 30;
/** Width of the similarity bins scope-wide observations are counted in. */
export const SCOPE_BIN = 0.01;

/** Scope-wide observation counts: per similarity bin, how many were right and how many wrong. */
export type ScopeCounts = Map<number, { right: number; wrong: number }>;

/** The bin an observation is counted in. */
export function scopeBinOf(similarity: number): number {
  return Math.min(Math.round(1 / SCOPE_BIN), Math.max(0, Math.round(similarity / SCOPE_BIN)));
}

/** Similarities are clipped here before pooledScale takes their logarithm (1 would be infinite). */
const POOLED_SCALE_CLIP = 0.9999;

/**
 * The scale the pooled curve is fitted and read on: x = -ln(1 - s). A logistic curve in s
 * itself does not fit a scope's pooled observations: its wrong answers spread from s = 0.3 (an
 * unrelated entry) to 0.93 (a hard negative), so the fitted slope is shallow and the curve
 * still puts a wrong answer at one chance in ten at s = 0.97, where almost none happen; the
 * policy then explores requests far above every threshold. On this scale the high
 * similarities, where the decisions are, are spread out (0.9 -> 2.3, 0.99 -> 4.6) and the low
 * ones pressed together. Measured in bench/semantic-cache (bench/RESULTS.md, eighth session):
 * more cache hits at every delta, with the error rate still under delta in every similarity
 * band; a maximum-likelihood choice among power transforms of s over the whole range picks s
 * itself, so this scale is chosen for the fit where it matters, not overall.
 */
export function pooledScale(similarity: number): number {
  return -Math.log1p(-Math.min(Math.max(similarity, 0), POOLED_SCALE_CLIP)) || 0;
}

/**
 * The threshold curve of a whole scope, fitted to every entry's observations (binned) on the
 * pooled scale (its t is a pooledScale value), or undefined while it has too few or its data
 * are separable.
 */
export function scopeEstimate(counts: ScopeCounts): ThresholdEstimate | undefined {
  const points: Observation[] = SEED_OBSERVATIONS.map((o) => ({ ...o, similarity: pooledScale(o.similarity) }));
  let total = 0;
  for (const [bin, { right, wrong }] of counts) {
    const x = pooledScale(bin * SCOPE_BIN);
    if (right > 0) points.push({ similarity: x, correct: true, weight: right });
    if (wrong > 0) points.push({ similarity: x, correct: false, weight: wrong });
    total += right + wrong;
  }
  if (total < MIN_SCOPE_OBSERVATIONS || isSeparable(points)) return undefined;
  return thresholdOf(fitLogistic(points));
}

/**
 * The probability of exploring (calling the model) for a prompt at `similarity` from an entry
 * with these (real) observations. The entry's own logistic curve decides when its data overlap;
 * separable data (the usual case early on: every right answer above every wrong one) say
 * nothing about the slope, so the scope's pooled curve (`scope`) decides instead, within what
 * the entry itself has shown: only where no wrong answer of its own was seen at this similarity
 * or above, and some right answer of its own was seen at this similarity or below. Below every
 * right answer it has had, the request explores: the pooled curve is the scope's average, and
 * an entry whose risk differs from it (a question with a near twin that needs another answer,
 * in a scope of loosely worded ones) would otherwise be answered from cache at similarities it
 * was never checked at, wrongly and without ever exploring, so without ever learning (in
 * bench/RESULTS.md, tenth session: 69-78 % wrong answers in two similarity bands at delta 0.05).
 * Per entry, P(right | s) is non-decreasing in s (the logistic model's own assumption), so a
 * right answer at or below s is evidence at s. Without a pooled curve the monotone bound above
 * decides. `scope` is on the pooled scale (scopeEstimate, pooledScale).
 */
export function explorationProbabilityFor(observations: readonly Observation[], similarity: number, delta: number, scope?: ThresholdEstimate): number {
  if (observations.length < MIN_OBSERVATIONS) return 1;
  const all = [...SEED_OBSERVATIONS, ...observations];
  if (!isSeparable(all)) return explorationProbability(thresholdOf(fitLogistic(all)), similarity, delta);
  if (!scope) return separableExplorationProbability(observations, similarity, delta);
  if (observations.some((o) => !o.correct && o.similarity >= similarity)) return 1;
  if (!observations.some((o) => o.correct && o.similarity <= similarity)) return 1;
  return explorationProbability(scope, pooledScale(similarity), delta);
}

export type Decision = 'exploit' | 'explore';

/** `random` is a uniform draw in [0, 1): injectable so that benchmarks replay with a seed. */
export function decide(observations: readonly Observation[], similarity: number, delta: number, random: () => number = Math.random, scope?: ThresholdEstimate): Decision {
  const tau = explorationProbabilityFor(observations, similarity, delta, scope);
  return random() < tau ? 'explore' : 'exploit';
}
