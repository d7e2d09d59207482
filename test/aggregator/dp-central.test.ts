/**
 * Central DP without sockets: the wrapper's checks, the noise at the aggregate level, the fixed
 * denominator, the clipped count, the planned event, the options, and Poisson selection.
 */
import { describe, expect, test } from 'vitest'
import { buildApp } from '../../aggregator/app.ts'
import { resolveOptions } from '../../aggregator/options.ts'
import type { RoundOptions } from '../../aggregator/options.ts'
import { CentralDpStrategy } from '../../aggregator/privacy/central-dp.ts'
import { gridFor, NORM_TOLERANCE, planCentralNoise } from '../../aggregator/privacy/central-noise.ts'
import type { CentralNoisePlan } from '../../aggregator/privacy/central-noise.ts'
import { DEFAULT_PRIVACY_BUDGET } from '../../aggregator/privacy/options.ts'
import { PlainSumStrategy } from '../../aggregator/rounds/plain-sum.ts'
import { MemoryStore } from '../../aggregator/store/memory-store.ts'
import { bernoulli, samplePoisson } from '../../aggregator/rounds/selection.ts'
import { ClipIndicator, clipForUpload, l2Norm } from '../../protocol/clip.ts'
import { RandomBits, seededRandomSource } from '../../protocol/dp/sampling/random.ts'
import { HearthError } from '../../protocol/errors.ts'
import { FRAME_HEADER_BYTES } from '../../protocol/frames.ts'
import { federatedLength, mfSpec } from '../../protocol/model-spec.ts'

function plan(d: number, clipNorm: number, z: number, countNoise: number | null = null, samplingRate = 1): CentralNoisePlan {
  return planCentralNoise({ clipNorm, deltaNoiseMultiplier: z, countNoise, vectorLength: d, samplingRate, gridBits: 20 })
}

function strategy(noise: CentralNoisePlan, denominator: number, seed = 'dp-central'): CentralDpStrategy {
  return new CentralDpStrategy(new PlainSumStrategy(), { plan: noise, denominator, random: new RandomBits(seededRandomSource(seed)) })
}

function codeOf(fn: () => void): string | undefined {
  try {
    fn()
  } catch (error) {
    return error instanceof HearthError ? error.code : `not a HearthError: ${String(error)}`
  }
  return undefined
}

describe('CentralDpStrategy', () => {
  test('noise at the aggregate level: mean ≈ 0 and std ≈ z·C/m over many coordinates', async () => {
    const d = 20_000
    const [c, z, m] = [2, 1.5, 10]
    const aggregation = strategy(plan(d, c, z), m).open({ roundId: 1, model: 'm', vectorLength: d })
    // Three clients with zero deltas: whatever is left after the mean is the noise.
    for (let k = 0; k < 3; k++) aggregation.add(`p${k}`, clipForUpload(new Float32Array(d), c).values)
    const result = await aggregation.result()
    expect(result.count).toBe(m) // the fixed denominator, not the 3 uploads
    let sum = 0
    let squares = 0
    for (const x of result.sum) {
      sum += x / result.count
      squares += (x / result.count) ** 2
    }
    const mean = sum / d
    const std = Math.sqrt(squares / d - mean * mean)
    const expected = (z * c) / m // 0.3
    // Tolerances: the sample mean has standard error σ/√d ≈ 0.0021, so |mean| < 5σ/√d; the sample
    // standard deviation has relative standard error 1/√(2d) = 0.5 %, so ±3 % is > 5 of them.
    expect(Math.abs(mean)).toBeLessThan((5 * expected) / Math.sqrt(d))
    expect(Math.abs(std / expected - 1)).toBeLessThan(0.03)
    // Every released value sits on the planned grid (the floating-point-safe mechanism).
    const grid = gridFor(z * c, 20)
    expect(result.sum.every((x) => Number.isInteger(x / grid))).toBe(true)
    expect(result.privacy).toMatchObject({ uploads: 3, clippedCount: 0, unclippedFraction: null, grids: [grid] })
  })

  test('refuses a delta above the clip norm, a bad indicator or a missing one, and keeps the sum clean', async () => {
    const d = 4
    const aggregation = strategy(plan(d, 1, 1), 5).open({ roundId: 1, model: 'm', vectorLength: d })
    const over = Float32Array.of(1, 1, 0, 0, ClipIndicator.Unclipped) // norm √2 > 1
    expect(codeOf(() => aggregation.add('a', over))).toBe('HEARTH_ERR_VECTOR_VALUE')
    // Just above the tolerance is refused; exactly C is accepted.
    const justOver = Float32Array.of(1 + 4 * NORM_TOLERANCE, 0, 0, 0, ClipIndicator.Unclipped)
    expect(l2Norm(justOver.subarray(0, d))).toBeGreaterThan(1 + NORM_TOLERANCE)
    expect(codeOf(() => aggregation.add('a', justOver))).toBe('HEARTH_ERR_VECTOR_VALUE')
    for (const indicator of [0, 1, 0.25]) {
      expect(codeOf(() => aggregation.add('a', Float32Array.of(0.5, 0, 0, 0, indicator)))).toBe('HEARTH_ERR_VECTOR_VALUE')
    }
    expect(codeOf(() => aggregation.add('a', Float32Array.of(0.5, 0, 0, 0)))).toBe('HEARTH_ERR_VECTOR_LENGTH')
    expect(codeOf(() => aggregation.add('a', Uint32Array.of(0, 0, 0, 0, 0)))).toBe('HEARTH_ERR_MALFORMED_FRAME')
    expect(aggregation.count).toBe(0)
    expect(codeOf(() => aggregation.add('a', Float32Array.of(1, 0, 0, 0, ClipIndicator.Clipped)))).toBeUndefined()
    expect(aggregation.count).toBe(1)
  })

  test('counts the clipped updates exactly when some clients exceed C', async () => {
    const d = 8
    const c = 1
    const norms = [0.2, 3, 0.99, 7, 1, 1.01, 0.5]
    const aggregation = strategy(plan(d, c, 1), norms.length).open({ roundId: 1, model: 'm', vectorLength: d })
    norms.forEach((n, k) => {
      const delta = new Float32Array(d)
      delta[k] = n
      aggregation.add(`p${k}`, clipForUpload(delta, c).values)
    })
    const result = await aggregation.result()
    expect(result.privacy?.clippedCount).toBe(3) // 3, 7 and 1.01 exceed C = 1
    expect(result.privacy?.uploads).toBe(norms.length)
  })

  test('wraps only strategies of plain Update frames, and checks its denominator', () => {
    const masked = { name: 'secagg', frameKind: 2, open: () => { throw new Error('unused') } } as unknown as PlainSumStrategy
    expect(() => new CentralDpStrategy(masked, { plan: plan(2, 1, 1), denominator: 1 })).toThrow(/plain Update frames/)
    expect(() => new CentralDpStrategy(new PlainSumStrategy(), { plan: plan(2, 1, 1), denominator: 0 })).toThrow(/denominator/)
    expect(new CentralDpStrategy(new PlainSumStrategy(), { plan: plan(2, 1, 1), denominator: 1 }).name).toBe('central-dp(plain-sum)')
  })
})

describe('planCentralNoise: what the accountant composes', () => {
  test('q = 1: a sampled Gaussian event with z_eff = σ/(C(1 + τ) + g√d)', () => {
    const [d, c, z] = [18, 0.5, 3]
    const noise = plan(d, c, z)
    const g = 2 ** (Math.floor(Math.log2(z * c)) - 20) // the grid rule of gridGaussianNoise
    expect(noise.delta.grid).toBe(g)
    const zEff = (z * c) / (c * (1 + NORM_TOLERANCE) + g * Math.sqrt(d))
    expect(noise.effectiveNoiseMultiplier).toBe(zEff)
    expect(noise.effectiveNoiseMultiplier).toBeLessThan(z)
    expect(noise.effectiveNoiseMultiplier / z).toBeGreaterThan(1 - 1e-5)
    expect(noise.event).toEqual({ kind: 'sampled-gaussian', samplingRate: 1, noiseMultiplier: zEff })
  })

  test('under secure aggregation the quantization step s enlarges each block: Δ₁ + s√d, Δ₂ + s', () => {
    const [d, c, z, s] = [18, 0.5, 3, 1e-3]
    const plain = planCentralNoise({ clipNorm: c, deltaNoiseMultiplier: z, countNoise: 4, vectorLength: d, samplingRate: 1, gridBits: 20 })
    const secure = planCentralNoise({ clipNorm: c, deltaNoiseMultiplier: z, countNoise: 4, vectorLength: d, samplingRate: 1, gridBits: 20, quantizationStep: s })
    expect(secure.delta.sensitivity).toBeCloseTo(plain.delta.sensitivity + s * Math.sqrt(d), 15)
    expect(secure.count?.sensitivity).toBeCloseTo((plain.count?.sensitivity ?? NaN) + s, 15)
    expect(secure.effectiveNoiseMultiplier).toBeLessThan(plain.effectiveNoiseMultiplier)
    expect(() => planCentralNoise({ clipNorm: c, deltaNoiseMultiplier: z, countNoise: null, vectorLength: d, samplingRate: 1, gridBits: 20, quantizationStep: -1 })).toThrow(RangeError)
  })

  test('a sum made by secure aggregation gets the same noise and denominator; its clipped count is rounded', async () => {
    const noise = plan(3, 1, 2)
    // Two uploads, one clipped (indicator −½), summed approximately: the indicators sum to ~0.
    const result = await strategy(noise, 5).finishSum({ sum: Float64Array.from([0.5, -0.25, 1, 1e-9]), count: 2 })
    expect(result.count).toBe(5)
    expect(result.sum).toHaveLength(3)
    expect(result.privacy).toMatchObject({ uploads: 2, clippedCount: 1, unclippedFraction: null })
    await expect(strategy(noise, 5).finishSum({ sum: Float64Array.from([0, 0, 0, 0.4]), count: 2 })).rejects.toThrow(/clipping indicators/)
  })

  test('q < 1: a Poisson-subsampled discrete Gaussian event in units of the noise', () => {
    const noise = plan(100, 1, 2, 5, 0.25)
    expect(noise.count).not.toBeNull()
    expect(noise.event).toEqual({
      kind: 'sampled-distributed-discrete-gaussian',
      samplingRate: 0.25,
      l2Sensitivity: 1 / noise.effectiveNoiseMultiplier,
      localSigma: 1,
      noisyClients: 1,
      dim: 101,
    })
  })
})

describe('options', () => {
  const base = { clipNorm: 1, noiseMultiplier: 1 } as const
  const resolve = (rounds: RoundOptions) => resolveOptions({ rounds })

  test('defaults: budget (8, 1e-6), denominator maxCohort, uniform sampling, z_Δ = z', () => {
    const resolved = resolve({ maxCohort: 40, privacy: { mode: 'central', ...base } }).rounds
    expect(resolved.privacy).toMatchObject({ budget: DEFAULT_PRIVACY_BUDGET, expectedCohortSize: 40, deltaNoiseMultiplier: 1, adaptiveClipping: null })
    expect(resolved.sampling).toEqual({ kind: 'uniform' })
  })

  test('refuses what would break the analysis, naming the option', () => {
    const cases: [RoundOptions, RegExp][] = [
      [{ sampling: { kind: 'poisson', rate: 0.1 }, privacy: { mode: 'central', ...base } }, /expectedCohortSize is required with Poisson/],
      [{ sampling: { kind: 'poisson', rate: 0 } }, /rounds.sampling.rate/],
      [{ privacy: { mode: 'central', ...base, adaptiveClipping: { countNoise: 0.5 } } }, /countNoise must exceed noiseMultiplier \/ 2/],
      [{ maxUpdateNorm: 1, privacy: { mode: 'central', ...base } }, /maxUpdateNorm must be unset with privacy/],
      [{ privacy: { mode: 'central', clipNorm: 0, noiseMultiplier: 1 } }, /clipNorm/],
      [{ privacy: { mode: 'central', ...base, budget: { epsilon: 1, delta: 1 } } }, /budget.delta/],
      [{ privacy: { mode: 'distributed', ...base } }, /rounds.privacy.mode 'distributed' needs rounds.aggregation 'secagg'/],
    ]
    for (const [rounds, message] of cases) {
      expect(() => resolve(rounds)).toThrow(message)
      expect(() => resolve(rounds)).toThrow(HearthError)
    }
  })
})

describe('Poisson sampling', () => {
  test('selects each session independently with probability q', () => {
    const random = new RandomBits(seededRandomSource('poisson'))
    const n = 20_000
    const q = 0.3
    const items = Array.from({ length: n }, (_, i) => i)
    const picked = samplePoisson(items, q, random)
    // Binomial(n, q): standard deviation √(nq(1 − q)) ≈ 65; allow 5 of them.
    expect(Math.abs(picked.length - n * q)).toBeLessThan(5 * Math.sqrt(n * q * (1 - q)))
    // Independent of position: both halves get their share.
    const firstHalf = picked.filter((i) => i < n / 2).length
    expect(Math.abs(firstHalf - (n / 2) * q)).toBeLessThan(5 * Math.sqrt((n / 2) * q * (1 - q)))
  })

  test('bernoulli is exact at the ends and unbiased for a dyadic p', () => {
    const random = new RandomBits(seededRandomSource('bernoulli'))
    for (let i = 0; i < 1000; i++) {
      expect(bernoulli(random, 0)).toBe(false)
      expect(bernoulli(random, 1)).toBe(true)
    }
    let hits = 0
    const trials = 40_000
    for (let i = 0; i < trials; i++) if (bernoulli(random, 0.75)) hits++
    expect(Math.abs(hits / trials - 0.75)).toBeLessThan(5 * Math.sqrt((0.75 * 0.25) / trials))
    expect(() => bernoulli(random, 1.5)).toThrow(RangeError)
  })
})

describe('the socket admits a private upload', () => {
  test('maxPayload leaves room for the clipping indicator of the largest model', async () => {
    const models = [{ name: 'big', mf: { buckets: 4096, dim: 16 } }]
    const length = federatedLength(mfSpec('big', models[0]!.mf))
    const plain = await buildApp({ store: new MemoryStore(), models })
    const dp = await buildApp({ store: new MemoryStore(), models, rounds: { privacy: { mode: 'central', clipNorm: 1, noiseMultiplier: 1 } } })
    try {
      expect(plain.hearth.maxMessageBytes).toBe(FRAME_HEADER_BYTES + 4 * length)
      expect(dp.hearth.maxMessageBytes).toBe(FRAME_HEADER_BYTES + 4 * (length + 1))
    } finally {
      await plain.close()
      await dp.close()
    }
  })
})
