import { fitLogistic, Observation, thresholdOf } from './logistic-fit';
import { decide, explorationProbability, explorationProbabilityFor, MIN_OBSERVATIONS, pooledScale, ScopeCounts, scopeEstimate, separableExplorationProbability } from './vcache-policy';

const at = (similarity: number, correct: boolean, n = 1): Observation[] => Array.from({ length: n }, () => ({ similarity, correct }));

describe('explorationProbability', () => {
  it('one eps, no variance: tau = 1 - delta / (1 - (1 - eps) sigmoid(g (s - t)))', () => {
    // alpha = 0.9 * sigmoid(20 * 0.1) = 0.9 * 0.8807971 = 0.7927174; tau = 1 - 0.02 / 0.2072826 = 0.9035134.
    expect(explorationProbability({ t: 0.8, g: 20, sd: 0 }, 0.9, 0.02, [0.1])).toBeCloseTo(0.9035134, 6);
  });

  it('the threshold moves up by z(1 - eps) standard deviations', () => {
    // t' = 0.8 + 1.6448536 * 0.05 = 0.8822427; alpha = 0.95 * sigmoid(20 * 0.0177573) = 0.5584718; tau = 1 - 0.02 / 0.4415282 = 0.9547028.
    expect(explorationProbability({ t: 0.8, g: 20, sd: 0.05 }, 0.9, 0.02, [0.05])).toBeCloseTo(0.9547028, 6);
  });

  it('is the minimum over the eps grid, clamped to [0, 1]', () => {
    const e = { t: 0.8, g: 20, sd: 0.05 };
    expect(explorationProbability(e, 0.9, 0.02, [0.05, 0.1])).toBeCloseTo(Math.min(explorationProbability(e, 0.9, 0.02, [0.05]), explorationProbability(e, 0.9, 0.02, [0.1])), 12);
    expect(explorationProbability({ t: 0.5, g: 50, sd: 0.01 }, 0.99, 0.05)).toBe(0);
    expect(explorationProbability({ t: 0.5, g: 50, sd: 0.01 }, 0.99, 1)).toBe(0);
    expect(explorationProbability({ t: 0.5, g: 50, sd: 0.01 }, 0.99, 0)).toBe(1);
    expect(explorationProbability({ t: Infinity, g: 0, sd: Infinity }, 0.99, 0.5)).toBe(1);
  });

  it('falls as the prompt gets closer to the entry and as more error is tolerated', () => {
    const e = { t: 0.85, g: 40, sd: 0.02 };
    expect(explorationProbability(e, 0.97, 0.02)).toBeLessThan(explorationProbability(e, 0.9, 0.02));
    expect(explorationProbability(e, 0.9, 0.1)).toBeLessThan(explorationProbability(e, 0.9, 0.02));
  });
});

describe('explorationProbabilityFor', () => {
  it('explores always while an entry has fewer than MIN_OBSERVATIONS observations', () => {
    expect(explorationProbabilityFor(at(1, true, MIN_OBSERVATIONS - 1), 1, 1)).toBe(1);
    expect(explorationProbabilityFor(at(1, true, MIN_OBSERVATIONS), 1, 1)).toBe(0);
  });

  it('separable data use the monotone bound: alpha = (1 - eps) eps^(1/k) over the k right answers at or below s', () => {
    // k = 10, eps = 0.1: alpha = 0.9 * 0.1^0.1 = 0.7148954; tau = 1 - 0.05 / 0.2851046 = 0.8246258.
    expect(separableExplorationProbability(at(1, true, 10), 1, 0.05, [0.1])).toBeCloseTo(0.8246258, 6);
    const mixed = [...at(0.95, true, 8), ...at(0.7, false, 2)];
    expect(explorationProbabilityFor(mixed, 0.97, 0.05)).toBeCloseTo(separableExplorationProbability(mixed, 0.97, 0.05), 12);
    // Closer than every right answer seen, or not above a wrong one: explore.
    expect(separableExplorationProbability(mixed, 0.9, 0.05)).toBe(1);
    expect(separableExplorationProbability(mixed, 0.7, 0.05)).toBe(1);
    // More right answers, less exploration.
    expect(separableExplorationProbability(at(1, true, 200), 1, 0.05)).toBeLessThan(separableExplorationProbability(at(1, true, 20), 1, 0.05));
  });

  it('overlapping data use the logistic fit: near the learned threshold it explores, far above it it exploits', () => {
    const observations = [...at(0.95, true, 30), ...at(0.9, true, 20), ...at(0.86, false, 5), ...at(0.87, true, 5), ...at(0.8, false, 20)];
    expect(explorationProbabilityFor(observations, 0.86, 0.02)).toBe(1);
    expect(explorationProbabilityFor(observations, 0.99, 0.05)).toBeLessThan(0.5);
  });
});

describe('the pooled curve (scopeEstimate) on the scale -ln(1 - s)', () => {
  it('pooledScale: -ln(1 - s), clipped at 0.9999 and at 0', () => {
    expect(pooledScale(0)).toBe(0);
    expect(pooledScale(0.9)).toBeCloseTo(2.302585, 6); // ln 10
    expect(pooledScale(0.99)).toBeCloseTo(4.60517, 5); // ln 100
    expect(pooledScale(1)).toBeCloseTo(9.21034, 5); // ln 10^4
    expect(pooledScale(-0.2)).toBe(0);
  });

  // 40 wrong answers at 0.5, 10 at 0.92; 30 right at 0.90, 20 at 0.92, 100 at 0.97: overlapping, so a fit exists.
  const counts: ScopeCounts = new Map([
    [50, { right: 0, wrong: 40 }],
    [90, { right: 30, wrong: 0 }],
    [92, { right: 20, wrong: 10 }],
    [97, { right: 100, wrong: 0 }],
  ]);

  it('is the logistic fit of the binned counts (and the two seeds) on that scale', () => {
    const points: Observation[] = [
      { similarity: 0, correct: false },
      { similarity: pooledScale(1), correct: true },
      { similarity: pooledScale(0.5), correct: false, weight: 40 },
      { similarity: pooledScale(0.9), correct: true, weight: 30 },
      { similarity: pooledScale(0.92), correct: true, weight: 20 },
      { similarity: pooledScale(0.92), correct: false, weight: 10 },
      { similarity: pooledScale(0.97), correct: true, weight: 100 },
    ];
    const expected = thresholdOf(fitLogistic(points));
    const estimate = scopeEstimate(counts)!;
    expect(estimate.t).toBeCloseTo(expected.t, 9);
    expect(estimate.g).toBeCloseTo(expected.g, 9);
    expect(estimate.sd).toBeCloseTo(expected.sd, 9);
    // Its threshold, back on the similarity scale, lies between the mixed bin and the clean one.
    const t = 1 - Math.exp(-estimate.t);
    expect(t).toBeGreaterThan(0.5);
    expect(t).toBeLessThan(0.97);
  });

  it('decides for an entry with separable data at pooledScale(s); steeper above the threshold than a curve in s', () => {
    const scope = scopeEstimate(counts)!;
    const entry = at(0.95, true, 8);
    for (const s of [0.95, 0.97, 0.99]) {
      expect(explorationProbabilityFor(entry, s, 0.05, scope)).toBeCloseTo(explorationProbability(scope, pooledScale(s), 0.05), 12);
    }
    // A curve of the same counts fitted on s explores more at 0.99 than this one does.
    const onS: Observation[] = [{ similarity: 0, correct: false }, { similarity: 1, correct: true }];
    for (const [bin, { right, wrong }] of counts) {
      if (right) onS.push({ similarity: bin / 100, correct: true, weight: right });
      if (wrong) onS.push({ similarity: bin / 100, correct: false, weight: wrong });
    }
    expect(explorationProbabilityFor(entry, 0.99, 0.05, scope)).toBeLessThan(explorationProbability(thresholdOf(fitLogistic(onS)), 0.99, 0.05));
    // A wrong answer of the entry's own at or above s still means: explore.
    expect(explorationProbabilityFor([...entry, ...at(0.9, false, 1)], 0.96, 0.05, scope)).toBeLessThan(1);
    expect(explorationProbabilityFor([...entry, ...at(0.9, false, 1)], 0.88, 0.05, scope)).toBe(1);
  });

  it('does not stretch the pooled curve below every right answer the entry has had', () => {
    const scope = scopeEstimate(counts)!;
    // Where the scope's curve alone would answer from cache most of the time...
    expect(explorationProbability(scope, pooledScale(0.97), 0.05)).toBeLessThan(0.5);
    // ...an entry right only at 0.99 has not been checked at 0.97: it explores,
    const entry = at(0.99, true, 8);
    expect(explorationProbabilityFor(entry, 0.97, 0.05, scope)).toBe(1);
    // and once it has been right at 0.96, the pooled curve decides at 0.97 (not yet at 0.955).
    const checked = [...entry, ...at(0.96, true, 1)];
    expect(explorationProbabilityFor(checked, 0.97, 0.05, scope)).toBeCloseTo(explorationProbability(scope, pooledScale(0.97), 0.05), 12);
    expect(explorationProbabilityFor(checked, 0.955, 0.05, scope)).toBe(1);
  });

  it('needs MIN_SCOPE_OBSERVATIONS and overlapping data', () => {
    expect(scopeEstimate(new Map([[90, { right: 10, wrong: 5 }]]))).toBeUndefined();
    expect(scopeEstimate(new Map([[50, { right: 0, wrong: 40 }], [95, { right: 40, wrong: 0 }]]))).toBeUndefined();
  });
});

describe('decide', () => {
  it('explores exactly when the uniform draw falls under tau', () => {
    const observations = at(1, true, 10);
    const tau = explorationProbabilityFor(observations, 1, 0.2);
    expect(tau).toBeGreaterThan(0);
    expect(tau).toBeLessThan(1);
    expect(decide(observations, 1, 0.2, () => tau - 1e-9)).toBe('explore');
    expect(decide(observations, 1, 0.2, () => tau)).toBe('exploit');
  });
});
