import { describe, expect, test } from 'vitest'
import {
  DiscreteGaussianSampler,
  PoissonSampler,
  RandomBits,
  SkellamSampler,
  cryptoRandomSource,
  gridGaussianNoise,
  sampleContinuousGaussian,
  sampleDiscreteLaplace,
  seededRandomSource,
} from '../../protocol/dp/index.ts'
import { bernoulliExpNeg } from '../../protocol/dp/sampling/bernoulli.ts'
import { isqrt, rationalFromNumber } from '../../protocol/dp/sampling/rational.ts'

/** Seeded, so every statistical test below is deterministic. */
const seeded = (seed: string): RandomBits => new RandomBits(seededRandomSource(seed))

/**
 * Pearson's chi-square goodness of fit of `draws` against the exact pmf. Cells with expected
 * count < 5 are pooled into the two tails. Returns the statistic and the p = 1e-4 critical
 * value (Wilson–Hilferty), so a correct sampler fails with probability about 1e-4 per seed.
 */
function chiSquare(draws: ArrayLike<number>, pmf: (k: number) => number, lo: number, hi: number): { stat: number; critical: number } {
  const n = draws.length
  const counts = new Map<number, number>()
  for (let i = 0; i < n; i++) counts.set(draws[i] as number, (counts.get(draws[i] as number) ?? 0) + 1)
  const cells: { observed: number; expected: number }[] = []
  let tailLow = { observed: 0, expected: 0 }
  let tailHigh = { observed: 0, expected: 0 }
  let coveredMass = 0
  for (let k = lo; k <= hi; k++) coveredMass += pmf(k)
  for (const [k, c] of counts) {
    if (k < lo) tailLow.observed += c
    if (k > hi) tailHigh.observed += c
  }
  for (let k = lo; k <= hi; k++) {
    const expected = n * pmf(k)
    const observed = counts.get(k) ?? 0
    if (expected < 5 && k < (lo + hi) / 2) tailLow = { observed: tailLow.observed + observed, expected: tailLow.expected + expected }
    else if (expected < 5) tailHigh = { observed: tailHigh.observed + observed, expected: tailHigh.expected + expected }
    else cells.push({ observed, expected })
  }
  // Mass outside [lo, hi] goes to the tails (split evenly: the tails here are symmetric or tiny).
  tailLow.expected += (n * (1 - coveredMass)) / 2
  tailHigh.expected += (n * (1 - coveredMass)) / 2
  for (const t of [tailLow, tailHigh]) if (t.expected >= 1) cells.push(t)
  let stat = 0
  for (const { observed, expected } of cells) stat += (observed - expected) ** 2 / expected
  const dof = cells.length - 1
  const z = 3.719 // standard normal quantile for p = 1e-4
  const critical = dof * (1 - 2 / (9 * dof) + z * Math.sqrt(2 / (9 * dof))) ** 3
  return { stat, critical }
}

function moments(xs: ArrayLike<number>): { mean: number; variance: number } {
  let s = 0
  let s2 = 0
  for (let i = 0; i < xs.length; i++) {
    s += xs[i] as number
    s2 += (xs[i] as number) ** 2
  }
  const mean = s / xs.length
  return { mean, variance: s2 / xs.length - mean * mean }
}

function discreteGaussianPmf(sigma2: number): (k: number) => number {
  let z = 0
  const bound = Math.ceil(12 * Math.sqrt(sigma2)) + 12
  for (let k = -bound; k <= bound; k++) z += Math.exp(-(k * k) / (2 * sigma2))
  return (k) => Math.exp(-(k * k) / (2 * sigma2)) / z
}

function logFactorial(k: number): number {
  let s = 0
  for (let i = 2; i <= k; i++) s += Math.log(i)
  return s
}

function poissonPmf(lambda: number): (k: number) => number {
  return (k) => (k < 0 ? 0 : Math.exp(-lambda + k * Math.log(lambda) - logFactorial(k)))
}

describe('random source', () => {
  test('seeded source is deterministic and seed-dependent; chunking does not matter', () => {
    const a = new Uint8Array(100)
    const b = new Uint8Array(100)
    seededRandomSource('s').fill(a)
    const src = seededRandomSource('s')
    src.fill(b.subarray(0, 37))
    src.fill(b.subarray(37, 100))
    expect(Array.from(b)).toEqual(Array.from(a))
    const c = new Uint8Array(100)
    seededRandomSource('t').fill(c)
    expect(Array.from(c)).not.toEqual(Array.from(a))
  })

  test('the CSPRNG source works here and fills more than 64 KiB', () => {
    const bytes = new Uint8Array(100_000)
    cryptoRandomSource().fill(bytes)
    expect(bytes.subarray(70_000).some((x) => x !== 0)).toBe(true)
  })

  test('a missing globalThis.crypto fails clearly', () => {
    const saved = Object.getOwnPropertyDescriptor(globalThis, 'crypto')
    Object.defineProperty(globalThis, 'crypto', { value: undefined, configurable: true })
    try {
      expect(() => cryptoRandomSource()).toThrow(/getRandomValues/)
    } finally {
      if (saved) Object.defineProperty(globalThis, 'crypto', saved)
    }
  })

  test('below(n) is uniform (chi-square) for n not a power of two, also above 2^32', () => {
    const r = seeded('below')
    const draws = Array.from({ length: 30_000 }, () => r.below(7))
    expect(chiSquare(draws, () => 1 / 7, 0, 6).stat).toBeLessThan(chiSquare(draws, () => 1 / 7, 0, 6).critical)
    const big = 3 * 2 ** 40 + 1
    const tops = Array.from({ length: 30_000 }, () => Math.floor(r.below(big) / (big / 3)))
    expect(chiSquare(tops, () => 1 / 3, 0, 2).stat).toBeLessThan(chiSquare(tops, () => 1 / 3, 0, 2).critical)
    const n = 10n ** 30n + 7n
    for (let i = 0; i < 200; i++) expect(r.belowBig(n) < n).toBe(true)
  })
})

describe('exact rationals', () => {
  test('doubles convert exactly; isqrt is the integer square root', () => {
    expect(rationalFromNumber(0.1)).toEqual({ num: 3602879701896397n, den: 36028797018963968n })
    expect(rationalFromNumber(1234.5)).toEqual({ num: 2469n, den: 2n })
    expect(rationalFromNumber(2 ** 60)).toEqual({ num: 2n ** 60n, den: 1n })
    expect(rationalFromNumber(5e-324)).toEqual({ num: 1n, den: 2n ** 1074n })
    expect(() => rationalFromNumber(-1, 'sigma2')).toThrow(/sigma2/)
    for (const n of [0n, 1n, 2n, 3n, 4n, 15n, 16n, 17n, 10n ** 40n, 10n ** 40n - 1n]) {
      const r = isqrt(n)
      expect(r * r <= n && (r + 1n) * (r + 1n) > n).toBe(true)
    }
  })
})

describe('CKS20 samplers', () => {
  test('Bernoulli(exp(-gamma)) has the right frequency for gamma = 0.3, 1, 2.7', () => {
    const r = seeded('bexp')
    for (const [num, den] of [[3n, 10n], [1n, 1n], [27n, 10n]] as const) {
      const n = 40_000
      let hits = 0
      for (let i = 0; i < n; i++) if (bernoulliExpNeg(r, num, den)) hits++
      const p = Math.exp(-Number(num) / Number(den))
      expect(Math.abs(hits / n - p)).toBeLessThan(4.5 * Math.sqrt((p * (1 - p)) / n))
    }
  })

  test('discrete Laplace fits exp(-|x|/t) (chi-square)', () => {
    const r = seeded('dlap')
    const t = 3
    const draws = Array.from({ length: 30_000 }, () => sampleDiscreteLaplace(r, t))
    const c = Math.tanh(1 / (2 * t)) // (1 − e^{−1/t})/(1 + e^{−1/t})
    const { stat, critical } = chiSquare(draws, (k) => c * Math.exp(-Math.abs(k) / t), -40, 40)
    expect(stat).toBeLessThan(critical)
  })

  test.each([0.7, 2.5, 30, 1234.5678])('discrete Gaussian sigma^2 = %f: mean, variance and chi-square against the exact pmf', (sigma2) => {
    const r = seeded(`dg${sigma2}`)
    const sampler = new DiscreteGaussianSampler(sigma2)
    const draws = new Float64Array(30_000)
    sampler.sampleInto(r, draws)
    const pmf = discreteGaussianPmf(sigma2)
    let variance = 0
    const bound = Math.ceil(12 * Math.sqrt(sigma2)) + 12
    for (let k = -bound; k <= bound; k++) variance += k * k * pmf(k)
    const m = moments(draws)
    expect(Math.abs(m.mean)).toBeLessThan(4.5 * Math.sqrt(variance / draws.length))
    expect(Math.abs(m.variance / variance - 1)).toBeLessThan(0.05)
    const span = Math.ceil(6 * Math.sqrt(sigma2)) + 3
    const { stat, critical } = chiSquare(draws, pmf, -span, span)
    expect(stat).toBeLessThan(critical)
  })

  test('the same seed gives the same noise', () => {
    const a = new Float64Array(50)
    const b = new Float64Array(50)
    new DiscreteGaussianSampler(100).sampleInto(seeded('same'), a)
    new DiscreteGaussianSampler(100).sampleInto(seeded('same'), b)
    expect(Array.from(a)).toEqual(Array.from(b))
  })

  test('bad parameters', () => {
    expect(() => new DiscreteGaussianSampler(0)).toThrow(RangeError)
    expect(() => new DiscreteGaussianSampler(Number.NaN)).toThrow(/sigma2/)
    expect(() => sampleDiscreteLaplace(seeded('x'), 0)).toThrow(/t must/)
    expect(() => new PoissonSampler(-1)).toThrow(/lambda/)
    expect(() => new SkellamSampler(2 ** 40)).toThrow(/variance/)
  })
})

describe('Poisson and Skellam samplers', () => {
  test.each([0.3, 1, 7.3, 100.25, 5000])('Poisson(%f): mean, variance and chi-square against the exact pmf', (lambda) => {
    const r = seeded(`po${lambda}`)
    const sampler = new PoissonSampler(lambda)
    expect(Math.abs(sampler.lambda - lambda) / lambda).toBeLessThan(1e-12)
    const draws = Array.from({ length: 30_000 }, () => sampler.sample(r))
    const m = moments(draws)
    expect(Math.abs(m.mean - lambda)).toBeLessThan(4.5 * Math.sqrt(lambda / draws.length))
    expect(Math.abs(m.variance / lambda - 1)).toBeLessThan(0.05)
    const span = Math.ceil(6 * Math.sqrt(lambda)) + 6
    const { stat, critical } = chiSquare(draws, poissonPmf(sampler.lambda), Math.max(0, Math.floor(lambda) - span), Math.floor(lambda) + span)
    expect(stat).toBeLessThan(critical)
  })

  test('Poisson tails are reached (the envelope covers them)', () => {
    // λ = 2.5: w = 4, body [0, 6]; values above 6 come only from the upper tail region.
    const r = seeded('tails')
    const sampler = new PoissonSampler(2.5)
    let above = 0
    const n = 100_000
    for (let i = 0; i < n; i++) if (sampler.sample(r) > 6) above++
    let p = 0
    for (let k = 7; k < 60; k++) p += poissonPmf(2.5)(k)
    expect(Math.abs(above / n - p)).toBeLessThan(4.5 * Math.sqrt((p * (1 - p)) / n))
  })

  test('Skellam of variance 40: symmetric, right variance, chi-square against the exact pmf', () => {
    const r = seeded('sk')
    const sampler = new SkellamSampler(40)
    const draws = new Float64Array(30_000)
    sampler.sampleInto(r, draws)
    const po = poissonPmf(20)
    const pmf = (k: number): number => {
      let s = 0
      for (let j = Math.max(0, -k); j < 200; j++) s += po(j + k) * po(j)
      return s
    }
    const m = moments(draws)
    expect(Math.abs(m.mean)).toBeLessThan(4.5 * Math.sqrt(40 / draws.length))
    expect(Math.abs(m.variance / 40 - 1)).toBeLessThan(0.05)
    const { stat, critical } = chiSquare(draws, pmf, -40, 40)
    expect(stat).toBeLessThan(critical)
  })
})

describe('central Gaussian noise', () => {
  test('grid noise: every output is a multiple of the grid, the noise has the asked spread', () => {
    const r = seeded('grid')
    const values = Array.from({ length: 20_000 }, (_, i) => i * 0.001 + Math.PI)
    const { values: out, info } = gridGaussianNoise(r, values, 0.5, 20)
    expect(info.grid).toBe(2 ** -21)
    expect(info.integerSigma2).toBeGreaterThanOrEqual((0.5 / info.grid) ** 2)
    expect(info.sensitivityInflation).toBeCloseTo(2 ** -21 * Math.sqrt(20_000), 15)
    const noise = Array.from(out, (x, i) => {
      expect(Number.isInteger(x / info.grid)).toBe(true)
      return x - (values[i] as number)
    })
    const m = moments(noise)
    expect(Math.abs(m.mean)).toBeLessThan(4.5 * 0.5 / Math.sqrt(noise.length))
    expect(Math.abs(Math.sqrt(m.variance) / 0.5 - 1)).toBeLessThan(0.03)
    expect(() => gridGaussianNoise(r, [Number.NaN], 1)).toThrow(/values\[0\]/)
  })

  test('the continuous sampler (simulations only) has the right moments', () => {
    const r = seeded('cont')
    const xs = Array.from({ length: 20_000 }, () => sampleContinuousGaussian(r, 3))
    const m = moments(xs)
    expect(Math.abs(m.mean)).toBeLessThan(4.5 * 3 / Math.sqrt(xs.length))
    expect(Math.abs(Math.sqrt(m.variance) / 3 - 1)).toBeLessThan(0.03)
  })
})
