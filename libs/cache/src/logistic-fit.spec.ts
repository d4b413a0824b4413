import { fitLogistic, isSeparable, Observation, sigmoid, thresholdOf } from './logistic-fit';
import { normalQuantile } from './normal-quantile';

const obs = (pairs: Array<[number, 0 | 1]>): Observation[] => pairs.map(([similarity, c]) => ({ similarity, correct: c === 1 }));

describe('normalQuantile', () => {
  it('matches the tabulated standard normal quantiles', () => {
    expect(normalQuantile(0.5)).toBeCloseTo(0, 9);
    expect(normalQuantile(0.95)).toBeCloseTo(1.6448536269514715, 8);
    expect(normalQuantile(0.975)).toBeCloseTo(1.9599639845400536, 8);
    expect(normalQuantile(0.001)).toBeCloseTo(-3.090232306167813, 8);
    expect(normalQuantile(1)).toBe(Infinity);
    expect(() => normalQuantile(1.5)).toThrow(RangeError);
  });
});

describe('fitLogistic', () => {
  // Symmetric about 0.5, so t = 0.5 and b0 = -g/2; the score equation sum((y - p) s) = 0 then
  // reduces to sigmoid(-g/2) = 0.2 sigmoid(0.1 g), whose root (bisection by hand) is g = 3.9906855.
  const symmetric = obs([[0, 0], [1, 1], [0.4, 1], [0.6, 0]]);

  it('finds the maximum-likelihood curve of overlapping data (hand-solved score equation)', () => {
    const fit = fitLogistic(symmetric);
    expect(fit.separable).toBe(false);
    expect(fit.g).toBeCloseTo(3.9906855, 5);
    expect(fit.b0).toBeCloseTo(-3.9906855 / 2, 5);
    expect(sigmoid(-fit.g / 2) - 0.2 * sigmoid(0.1 * fit.g)).toBeCloseTo(0, 7);
    expect(thresholdOf(fit).t).toBeCloseTo(0.5, 9);
  });

  it('gives the inverse of the information matrix as the covariance', () => {
    const fit = fitLogistic(symmetric);
    let h00 = 0;
    let h01 = 0;
    let h11 = 0;
    for (const o of symmetric) {
      const p = sigmoid(fit.b0 + fit.g * o.similarity);
      const w = p * (1 - p);
      h00 += w;
      h01 += w * o.similarity;
      h11 += w * o.similarity ** 2;
    }
    const [c00, c01, c11] = fit.cov;
    expect(h00 * c00 + h01 * c01).toBeCloseTo(1, 6);
    expect(h00 * c01 + h01 * c11).toBeCloseTo(0, 6);
    expect(h01 * c01 + h11 * c11).toBeCloseTo(1, 6);
  });

  it('detects (quasi-)separable data and keeps the slope finite there', () => {
    expect(isSeparable(obs([[0, 0], [1, 1], [0.9, 1], [0.7, 0]]))).toBe(true);
    expect(isSeparable(obs([[0, 0], [0.8, 0], [0.8, 1], [1, 1]]))).toBe(true);
    expect(isSeparable(symmetric)).toBe(false);
    const fit = fitLogistic(obs([[0, 0], [1, 1], [0.9, 1], [0.7, 0]]));
    expect(fit.separable).toBe(true);
    expect(Number.isFinite(fit.g)).toBe(true);
    expect(fit.g).toBeGreaterThan(0);
  });
});

describe('thresholdOf', () => {
  it('t = -b0/g with the delta-method variance (hand-computed)', () => {
    // ∇t = (-1/g, b0/g²) = (-0.1, -0.08); Var = 0.01*4 + 2*(-0.1)(-0.08)(-5) + 0.0064*6.5 = 0.04 - 0.08 + 0.0416 = 0.0016.
    const estimate = thresholdOf({ b0: -8, g: 10, cov: [4, -5, 6.5], separable: false });
    expect(estimate.t).toBeCloseTo(0.8, 12);
    expect(estimate.sd).toBeCloseTo(0.04, 9);
  });

  it('a slope that is not positive has no threshold', () => {
    expect(thresholdOf({ b0: 1, g: 0, cov: [1, 0, 1], separable: false })).toEqual({ t: Infinity, g: 0, sd: Infinity });
    expect(thresholdOf({ b0: 1, g: -2, cov: [1, 0, 1], separable: false }).sd).toBe(Infinity);
  });
});
