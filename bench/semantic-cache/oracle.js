'use strict';
/**
 * The ceiling of any rule that bounds each request's chance of a wrong cached answer by delta:
 * per 0.01 band of similarity to the nearest entry, the true share of wrong answers (measured
 * on the workload with a cache that inserts every miss under `BENCH_SC_INSERT_UNDER`, default
 * 0.90; or, with BENCH_SC_INSERT=disagree, the vCache rule: a request is inserted when its
 * nearest entry's answer is not its own, as if every request were explored, the most entries
 * that rule makes), exploited with probability min(1, delta / share). Reported in
 * bench/RESULTS.md next to the policy's results. `node bench/semantic-cache/oracle.js` against a build (dist/ or BENCH_DIST).
 */
const { generate } = require('./workload');
const { posNum } = require('../support');
const lib = require('./cache-lib');

const insertUnder = posNum(process.env.BENCH_SC_INSERT_UNDER, 0.9);
const onDisagreement = process.env.BENCH_SC_INSERT === 'disagree';
for (const paraphrases of [0, 25]) {
  const workload = generate({ seed: posNum(process.env.BENCH_SC_SEED, 7), requests: posNum(process.env.BENCH_SC_REQUESTS, 20_000), paraphrases });
  const index = new lib.VectorIndex(workload.options.dims);
  const answers = [];
  const bands = new Map();
  for (const { cls, vector } of workload.requests) {
    const [best] = index.search(vector, 1);
    if (best) {
      const band = Math.floor(Math.min(1, best.score) * 100);
      const c = bands.get(band) ?? { n: 0, wrong: 0 };
      c.n++;
      if (answers[best.id] !== cls) c.wrong++;
      bands.set(band, c);
    }
    if (!best || (onDisagreement ? answers[best.id] !== cls : best.score < insertUnder)) {
      index.add(answers.length, vector);
      answers.push(cls);
    }
  }
  for (const delta of [0.01, 0.02, 0.05]) {
    let hits = 0;
    let wrong = 0;
    for (const { n, wrong: w } of bands.values()) {
      const take = w === 0 || w / n <= delta ? 1 : delta / (w / n);
      hits += n * take;
      wrong += w * take;
    }
    const total = workload.requests.length;
    console.log(`${paraphrases ? `pool of ${paraphrases} paraphrases` : 'new paraphrase per request'}, delta ${delta}: oracle hit rate ${((100 * hits) / total).toFixed(1)} %, error ${((100 * wrong) / total).toFixed(2)} %, ${answers.length} entries`);
  }
}
