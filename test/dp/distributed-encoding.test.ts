/**
 * The distributed-DP encoding end to end without sockets: n devices' noised shares, summed mod
 * 2^b as secure aggregation does, decode to the exact scaled sum plus noise of the planned
 * variance (a chi-square check over many coordinates at a fixed seed), without wrapping.
 */
import { describe, expect, test } from 'vitest'
import { centredSum, encodeNoisedShare, planDistributedDp } from '../../protocol/dp/index.ts'
import type { DistributedDpPlan } from '../../protocol/dp/index.ts'
import { RandomBits, seededRandomSource } from '../../protocol/dp/sampling/random.ts'

/** Vectors of norm `norm` with every coordinate of the same magnitude (the worst case for the signal bound). */
function inputs(n: number, dim: number, norm: number): Float32Array[] {
  return Array.from({ length: n }, (_, k) => Float32Array.from({ length: dim }, (_, i) => ((i + k) % 3 === 0 ? -1 : 1) * (norm / Math.sqrt(dim)) * 0.999))
}

/** Σ r²/(n·σ²) over the coordinates, r = decoded·s − Σ x·s: χ²_d when the noise has the planned variance. */
function chiSquare(plan: DistributedDpPlan, xs: readonly Float32Array[], clipNorm: number, seed: string): number {
  const dim = plan.dim
  const random = new RandomBits(seededRandomSource(seed))
  const modulus = 2 ** plan.bits
  const sum = new Float64Array(dim)
  for (const x of xs) {
    const share = encodeNoisedShare(x, { mechanism: plan.mechanism, clipNorm, scale: plan.scale, localVariance: plan.localVariance, modulusBits: plan.bits }, random)
    expect(share.every((v) => v < modulus)).toBe(true)
    for (let i = 0; i < dim; i++) sum[i] = ((sum[i] as number) + (share[i] as number)) % modulus
  }
  const decoded = centredSum(sum, plan.bits)
  let stat = 0
  for (let i = 0; i < dim; i++) {
    let exact = 0
    for (const x of xs) exact += (x[i] as number) * plan.scale
    const r = (decoded[i] as number) - exact
    // Never near the modulus: the plan's bound holds.
    expect(Math.abs(decoded[i] as number)).toBeLessThan(plan.signalBound + plan.noiseBound)
    stat += (r * r) / (xs.length * plan.localVariance)
  }
  return stat
}

describe('distributed-DP encoding', () => {
  test('discrete Gaussian shares: the decoded sum is the scaled sum plus noise of variance n·σ² (χ² at a fixed seed)', () => {
    const dim = 4000
    const plan = planDistributedDp({ mechanism: 'discrete-gaussian', bits: 20, maxClients: 5, noisyClients: 3, clipNorm: 1, dim, noiseMultiplier: 1 })
    expect(plan.localSigma).toBeGreaterThan(10) // rounding's variance (<= 1/4 per device) is negligible
    const stat = chiSquare(plan, inputs(5, dim, 1), 1, 'dg-encoding')
    // χ²_4000: mean 4000, sd √8000 ≈ 89; ±5 sd.
    expect(Math.abs(stat - dim)).toBeLessThan(5 * Math.sqrt(2 * dim))
  })

  test('Skellam shares: the same check', () => {
    const dim = 2000
    const plan = planDistributedDp({ mechanism: 'skellam', bits: 18, maxClients: 4, noisyClients: 2, clipNorm: 2, dim, noiseMultiplier: 0.8 })
    const stat = chiSquare(plan, inputs(4, dim, 2), 2, 'skellam-encoding')
    expect(Math.abs(stat - dim)).toBeLessThan(5 * Math.sqrt(2 * dim))
  })

  test('inputs above the clip norm are clipped; centring reads the top half of Z_2^b as negative', () => {
    const plan = planDistributedDp({ mechanism: 'discrete-gaussian', bits: 16, maxClients: 2, noisyClients: 1, clipNorm: 1, dim: 2, noiseMultiplier: 0.01 })
    const random = new RandomBits(seededRandomSource('clip'))
    const share = encodeNoisedShare([30, -40], { mechanism: 'discrete-gaussian', clipNorm: 1, scale: plan.scale, localVariance: plan.localVariance, modulusBits: 16 }, random)
    const [a, b] = centredSum(share, 16)
    expect((a as number) / plan.scale).toBeCloseTo(0.6, 1)
    expect((b as number) / plan.scale).toBeCloseTo(-0.8, 1)
    expect(Array.from(centredSum([0, 1, 2 ** 15 - 1, 2 ** 15, 2 ** 16 - 1], 16))).toEqual([0, 1, 2 ** 15 - 1, -(2 ** 15), -1])
  })
})
