import { Observation } from './logistic-fit';
import { decide, explorationProbability, explorationProbabilityFor, MIN_OBSERVATIONS, separableExplorationProbability } from './vcache-policy';

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
