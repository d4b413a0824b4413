'use strict';
/**
 * Ceilings of the hit rate on the policy benchmark's workloads. `node
 * bench/semantic-cache/oracle.js` against a build (dist/ or BENCH_DIST); no Redis. Reported in
 * bench/RESULTS.md next to the policy's results.
 *
 * 1. Any rule that bounds each request's chance of a wrong cached answer by delta: per 0.01 band
 *    of similarity to the nearest entry, the true share of wrong answers (measured on the
 *    workload with a cache that inserts every miss under `BENCH_SC_INSERT_UNDER`, default 0.90;
 *    or, with BENCH_SC_INSERT=disagree, the vCache rule: a request is inserted when its nearest
 *    entry's answer is not its own, as if every request were explored, the most entries that
 *    rule makes), exploited with probability min(1, delta / share).
 *
 * 2. The same under the issue's young-entry rule: an entry with fewer than
 *    BENCH_SC_MIN_OBS (the policy's MIN_OBSERVATIONS, 6) judged explorations explores every
 *    request whose nearest it is, an exploration adds one observation to the nearest entry, and a
 *    new entry is inserted when the judge disagrees. Three ceilings:
 *    - "counting": no knowledge assumed at all. Each class that gets a right hit needs an entry
 *      of its own, made by one of its requests (that request is not a right hit), and that entry
 *      needs k explorations (not hits, one entry each) before its first hit. So with m such
 *      classes, hits <= min(N - k m, the m largest classes' requests minus one each + wrong hits),
 *      and wrong hits <= delta N; maximised over m.
 *    - "band knowledge": a policy that knows each band's true wrong share (1. with the vCache
 *      insertion rule) and exploits a mature entry with probability min(1, delta / share).
 *    - "entry knowledge": the same with the share of each (entry's answer, band), measured in
 *      hindsight on the workload: more than any learning can know, an optimistic ceiling.
 */
const { generate } = require('./workload');
const { posNum } = require('../support');
const lib = require('./cache-lib');

const DELTAS = [0.01, 0.02, 0.05];
const insertUnder = posNum(process.env.BENCH_SC_INSERT_UNDER, 0.9);
const onDisagreement = process.env.BENCH_SC_INSERT === 'disagree';
const minObservations = posNum(process.env.BENCH_SC_MIN_OBS, lib.MIN_OBSERVATIONS);
const pct = (x, n) => `${((100 * x) / n).toFixed(1)} %`;

const bandOf = (score) => Math.floor(Math.min(1, score) * 100);

/** Per key (keyOf(entry's answer, band)): requests, and wrong answers of the nearest entry among them. */
function measureShares(workload, insert, keyOf) {
  const index = new lib.VectorIndex(workload.options.dims);
  const answers = [];
  const shares = new Map();
  for (const { cls, vector } of workload.requests) {
    const [best] = index.search(vector, 1);
    if (best) {
      const key = keyOf(answers[best.id], bandOf(best.score));
      const c = shares.get(key) ?? { n: 0, wrong: 0 };
      c.n++;
      if (answers[best.id] !== cls) c.wrong++;
      shares.set(key, c);
    }
    if (!best || insert(answers[best.id], cls, best.score)) {
      index.add(answers.length, vector);
      answers.push(cls);
    }
  }
  return { shares, entries: answers.length };
}

/** Probability of exploiting a request in a cell with this true wrong share. */
const take = (cell, delta) => (!cell || cell.wrong === 0 || cell.wrong / cell.n <= delta ? 1 : delta / (cell.wrong / cell.n));

/** 1: the per-band oracle without the young-entry rule. */
function perBand(delta, shares) {
  let hits = 0;
  let wrong = 0;
  for (const cell of shares.values()) {
    const p = take(cell, delta);
    hits += cell.n * p;
    wrong += cell.wrong * p;
  }
  return { hits, wrong };
}

/** 2, band or entry knowledge: the young-entry rule, then exploit with the cell's probability. */
function underYoungRule(workload, delta, shares, keyOf) {
  const random = workload.seeded(1);
  const index = new lib.VectorIndex(workload.options.dims);
  const entries = [];
  let hits = 0;
  let wrong = 0;
  for (const { cls, vector } of workload.requests) {
    const [best] = index.search(vector, 1);
    if (best) {
      const entry = entries[best.id];
      const p = entry.observations < minObservations ? 0 : take(shares.get(keyOf(entry.cls, bandOf(best.score))), delta);
      if (random() < p) {
        hits++;
        if (entry.cls !== cls) wrong++;
        continue;
      }
      entry.observations++;
      if (entry.cls === cls) continue;
    }
    index.add(entries.length, vector);
    entries.push({ cls, observations: 0 });
  }
  return { hits, wrong };
}

/** 2, counting: the most hits the young-entry rule leaves, knowing everything else. */
function countingCeiling(workload, delta) {
  const perClass = new Map();
  for (const { cls } of workload.requests) perClass.set(cls, (perClass.get(cls) ?? 0) + 1);
  const sizes = [...perClass.values()].sort((a, b) => b - a);
  const n = workload.requests.length;
  let best = 0;
  let rightHits = 0;
  sizes.forEach((size, i) => {
    rightHits += size - 1;
    best = Math.max(best, Math.min(n - minObservations * (i + 1), rightHits + delta * n));
  });
  return best;
}

const byBand = (_answer, band) => band;
const byEntry = (answer, band) => `${answer}:${band}`;
const disagree = (answer, cls) => answer !== cls;

for (const paraphrases of [0, 25]) {
  const workload = generate({ seed: posNum(process.env.BENCH_SC_SEED, 7), requests: posNum(process.env.BENCH_SC_REQUESTS, 20_000), paraphrases });
  const total = workload.requests.length;
  const name = paraphrases ? `pool of ${paraphrases} paraphrases` : 'new paraphrase per request';
  const first = measureShares(workload, onDisagreement ? disagree : (_a, _c, score) => score < insertUnder, byBand);
  const vcacheBands = onDisagreement ? first.shares : measureShares(workload, disagree, byBand).shares;
  const vcacheEntries = measureShares(workload, disagree, byEntry).shares;
  for (const delta of DELTAS) {
    const { hits, wrong } = perBand(delta, first.shares);
    console.log(`${name}, delta ${delta}: oracle hit rate ${pct(hits, total)}, error ${((100 * wrong) / total).toFixed(2)} %, ${first.entries} entries`);
  }
  for (const delta of DELTAS) {
    const band = underYoungRule(workload, delta, vcacheBands, byBand);
    const entry = underYoungRule(workload, delta, vcacheEntries, byEntry);
    console.log(
      `${name}, delta ${delta}, young-entry rule (${minObservations} observations): counting ceiling ${pct(countingCeiling(workload, delta), total)}; ` +
        `band knowledge ${pct(band.hits, total)} (error ${((100 * band.wrong) / total).toFixed(2)} %); entry knowledge ${pct(entry.hits, total)} (error ${((100 * entry.wrong) / total).toFixed(2)} %)`,
    );
  }
}
