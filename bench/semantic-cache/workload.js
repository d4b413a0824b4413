'use strict';
/**
 * A seeded synthetic workload for the semantic cache: equivalence classes of prompts (one right
 * answer per class) with controlled embedding similarities, and hard negatives.
 *
 * - Each class has an anchor (a random unit vector) and a pool of paraphrases
 *   p = cos(θ)·anchor + sin(θ)·noise with cos(θ) drawn per paraphrase from the class's band:
 *   "tight" classes (cos θ in [0.97, 0.995]), "medium" ([0.93, 0.99]) and "loose" ([0.88, 0.97]).
 *   Two paraphrases of one class are about cos θ1·cos θ2 similar.
 * - A share of classes has a twin: a class whose anchor sits at cos φ in [0.90, 0.97] from it
 *   and that needs a different answer (e.g. the same question about another year). Its
 *   paraphrases land close to the first class's; a static threshold low enough to group the
 *   loose paraphrases of a class also answers its twin wrongly.
 * - `profile: 'distinct'` makes classes whose risks differ instead: half are "precise" (cos θ in
 *   [0.985, 0.998]) and each has a twin at cos φ in [0.95, 0.98], the other half are "loose" ([0.86,
 *   0.95]) with no twin. One threshold cannot suit both: low enough to group the loose paraphrases,
 *   it answers the precise questions' twins wrongly. This is the case per-entry thresholds are for.
 * - Requests pick a class by a Zipf law (popular questions come back). By default each request
 *   is a new paraphrase (`paraphrases: 0`), as in prompt logs where the same wording rarely
 *   comes twice (exact repeats are an exact cache's job); `paraphrases: n` draws from a fixed
 *   pool of n per class instead, so that wordings repeat exactly.
 */

const { seededRandom: seeded } = require('./cache-lib');

function gaussian(random) {
  const u = Math.max(random(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

function unit(v) {
  let n = 0;
  for (const x of v) n += x * x;
  n = Math.sqrt(n);
  for (let i = 0; i < v.length; i++) v[i] /= n;
  return v;
}

function randomUnit(random, dims) {
  const v = new Float32Array(dims);
  for (let i = 0; i < dims; i++) v[i] = gaussian(random);
  return unit(v);
}

/** cos(angle)·base + sin(angle)·(a random direction orthogonal to base). */
function tilt(random, base, cos) {
  const noise = randomUnit(random, base.length);
  let d = 0;
  for (let i = 0; i < base.length; i++) d += noise[i] * base[i];
  for (let i = 0; i < base.length; i++) noise[i] -= d * base[i];
  unit(noise);
  const sin = Math.sqrt(Math.max(0, 1 - cos * cos));
  const out = new Float32Array(base.length);
  for (let i = 0; i < base.length; i++) out[i] = cos * base[i] + sin * noise[i];
  return unit(out);
}

const BANDS = { tight: [0.97, 0.995], medium: [0.93, 0.99], loose: [0.88, 0.97] };
/** profile 'distinct': precise questions with near twins, loose ones without. */
const DISTINCT = { precise: [0.985, 0.998], twin: [0.95, 0.98], loose: [0.86, 0.95], preciseShare: 0.5 };

/** The anchor classes of profile 'twins' (the default): three kinds of spread, a share with twins. */
function twinClasses(random, o) {
  const classes = [];
  const kinds = Object.keys(BANDS);
  for (let c = 0; c < o.classes; c++) {
    const anchor = randomUnit(random, o.dims);
    const kind = kinds[Math.floor(random() * kinds.length)];
    classes.push({ anchor, band: BANDS[kind], kind, twinOf: -1 });
    if (random() < o.twinShare) {
      const cos = 0.9 + random() * 0.07;
      classes.push({ anchor: tilt(random, anchor, cos), band: BANDS[kind], kind, twinOf: classes.length - 1 });
    }
  }
  return classes;
}

/** The anchor classes of profile 'distinct'. */
function distinctClasses(random, o) {
  const classes = [];
  for (let c = 0; c < o.classes; c++) {
    const anchor = randomUnit(random, o.dims);
    if (random() < DISTINCT.preciseShare) {
      classes.push({ anchor, band: DISTINCT.precise, kind: 'precise', twinOf: -1 });
      const cos = DISTINCT.twin[0] + random() * (DISTINCT.twin[1] - DISTINCT.twin[0]);
      classes.push({ anchor: tilt(random, anchor, cos), band: DISTINCT.precise, kind: 'precise', twinOf: classes.length - 1 });
    } else {
      classes.push({ anchor, band: DISTINCT.loose, kind: 'loose', twinOf: -1 });
    }
  }
  return classes;
}

/**
 * options: seed, dims (64), classes (anchor classes, 300), profile ('twins' or 'distinct'),
 * twinShare (0.3, profile 'twins'), paraphrases (0: a new one per request; n: a pool of n per
 * class), requests (20000), zipf (1.0).
 * Returns { requests: [{ cls, vector }], classes, options, seeded }.
 */
function generate(options = {}) {
  const o = { seed: 7, dims: 64, classes: 300, twinShare: 0.3, paraphrases: 0, requests: 20_000, zipf: 1.0, ...options };
  o.profile = o.profile ?? 'twins';
  const random = seeded(o.seed);
  if (o.profile !== 'twins' && o.profile !== 'distinct') throw new Error(`unknown workload profile ${o.profile}`);
  const classes = o.profile === 'distinct' ? distinctClasses(random, o) : twinClasses(random, o);
  const paraphrase = (rnd, cls) => tilt(rnd, cls.anchor, cls.band[0] + rnd() * (cls.band[1] - cls.band[0]));
  for (const cls of classes) {
    cls.pool = [];
    for (let p = 0; p < o.paraphrases; p++) cls.pool.push(paraphrase(random, cls));
  }
  // Zipf over a shuffled order, so popularity does not follow generation order (twins next to their class).
  const order = classes.map((_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const weights = order.map((_, rank) => 1 / Math.pow(rank + 1, o.zipf));
  const total = weights.reduce((a, b) => a + b, 0);
  const cumulative = [];
  let acc = 0;
  for (const w of weights) cumulative.push((acc += w / total));
  const requests = [];
  for (let r = 0; r < o.requests; r++) {
    const u = random();
    let lo = 0;
    let hi = cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid] < u) lo = mid + 1;
      else hi = mid;
    }
    const cls = order[lo];
    const c = classes[cls];
    const vector = c.pool.length > 0 ? c.pool[Math.floor(random() * c.pool.length)] : paraphrase(random, c);
    requests.push({ cls, vector });
  }
  return { requests, classes, options: o, seeded };
}

module.exports = { generate, seeded, randomUnit, tilt };
