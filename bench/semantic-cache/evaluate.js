'use strict';
/**
 * Streams a workload through the vCache policy and through static similarity thresholds, with
 * the same nearest-neighbour index, and counts wrong cache hits, hits and requests.
 */

/** Wilson score interval (95 %) of k successes in n. */
function wilson(k, n, z = 1.959964) {
  if (n === 0) return [0, 1];
  const p = k / n;
  const d = 1 + (z * z) / n;
  const centre = (p + (z * z) / (2 * n)) / d;
  const half = (z * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n))) / d;
  return [Math.max(0, centre - half), Math.min(1, centre + half)];
}

/** lib: the built @lib/cache (VectorIndex, decide). */
function runStatic(lib, workload, threshold) {
  const index = new lib.VectorIndex(workload.options.dims);
  const answers = [];
  let hits = 0;
  let wrong = 0;
  for (const { cls, vector } of workload.requests) {
    const [best] = index.search(vector, 1);
    if (best && best.score >= threshold) {
      hits++;
      if (answers[best.id] !== cls) wrong++;
      continue;
    }
    index.add(answers.length, vector);
    answers.push(cls);
  }
  return summary(`static ${threshold.toFixed(2)}`, workload.requests.length, hits, wrong, answers.length);
}

function runVCache(lib, workload, delta, seed) {
  const random = workload.seeded(seed);
  const index = new lib.VectorIndex(workload.options.dims);
  const entries = [];
  const counts = new Map();
  let scope;
  let hits = 0;
  let wrong = 0;
  /** Per 0.01 band of the nearest similarity: requests, and wrong hits among them. */
  const bands = new Map();
  for (const { cls, vector } of workload.requests) {
    const [best] = index.search(vector, 1);
    if (!best) {
      index.add(entries.length, vector);
      entries.push({ cls, observations: [] });
      continue;
    }
    const entry = entries[best.id];
    const similarity = Math.min(1, best.score);
    const bin = lib.scopeBinOf(similarity);
    const band = bands.get(bin) ?? { requests: 0, wrong: 0 };
    bands.set(bin, band);
    band.requests++;
    if (lib.decide(entry.observations, similarity, delta, random, scope) === 'exploit') {
      hits++;
      if (entry.cls !== cls) {
        wrong++;
        band.wrong++;
      }
      continue;
    }
    // Explore: the model answers (the class's answer); the judge compares it with the entry's.
    const correct = entry.cls === cls;
    entry.observations.push({ similarity, correct });
    if (entry.observations.length > lib.MAX_OBSERVATIONS) entry.observations.shift();
    const c = counts.get(bin) ?? { right: 0, wrong: 0 };
    if (correct) c.right++;
    else c.wrong++;
    counts.set(bin, c);
    scope = lib.scopeEstimate(counts);
    if (!correct) {
      index.add(entries.length, vector);
      entries.push({ cls, observations: [] });
    }
  }
  return { ...summary(`vCache δ=${delta}`, workload.requests.length, hits, wrong, entries.length), bands: bandCheck(lib, bands, delta) };
}

/** Bands with at least this many requests are checked. */
const MIN_BAND_REQUESTS = 100;

/**
 * The policy bounds each request's chance of a wrong hit by delta, so it must hold within every
 * similarity band too, not only on average: a band whose wrong-hit share has its 95 % Wilson
 * lower bound above delta breaks the promise. (Each band is tested alone, with no correction for
 * testing ~20 bands: a flag is a reason to look, not proof.)
 */
function bandCheck(lib, bands, delta) {
  const checked = [...bands]
    .filter(([, b]) => b.requests >= MIN_BAND_REQUESTS)
    .map(([bin, b]) => ({ from: (bin - 0.5) * lib.SCOPE_BIN, to: (bin + 0.5) * lib.SCOPE_BIN, ...b, share: b.wrong / b.requests, low: wilson(b.wrong, b.requests)[0] }));
  checked.sort((a, b) => b.share - a.share);
  return { checked: checked.length, worst: checked[0], flagged: checked.filter((b) => b.low > delta) };
}

function summary(policy, requests, hits, wrong, entries) {
  const [, errorHigh] = wilson(wrong, requests);
  return { policy, requests, hits, wrong, entries, hitRate: hits / requests, errorRate: wrong / requests, errorHigh };
}

module.exports = { runStatic, runVCache, wilson };
