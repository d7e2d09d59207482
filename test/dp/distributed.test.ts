import { describe, expect, test } from 'vitest'
import fc from 'fast-check'
import {
  DEFAULT_RDP_ORDERS,
  RdpAccountant,
  distributedDiscreteGaussianRdp,
  distributedDiscreteGaussianTau,
  distributedDpEvent,
  eventRdp,
  planDistributedDp,
  roundedL2NormBound,
  sampledGaussianRdp,
  skellamRdp,
} from '../../protocol/dp/index.ts'

const integerOrders = DEFAULT_RDP_ORDERS.filter((a) => Number.isInteger(a))

describe('distributed DP accounting', () => {
  test('tau (KLS21 Thm 1) is 0 for one client and negligible for sigma >= 2', () => {
    expect(distributedDiscreteGaussianTau(1, 1)).toBe(0)
    expect(distributedDiscreteGaussianTau(0.5, 2)).toBeCloseTo(10 * Math.exp(-(Math.PI ** 2) / 4), 14)
    expect(distributedDiscreteGaussianTau(2, 1000)).toBeLessThan(1e-15) // 10·Σ e^{−8π²k/(k+1)} ≈ 7e−17
    expect(() => distributedDiscreteGaussianTau(0.4, 10)).toThrow(/localSigma/)
  })

  test('one discrete Gaussian share (tau = 0) has the Gaussian RDP alpha*Delta^2/(2 sigma^2) (CKS20 Prop. 5)', () => {
    for (const a of [2, 7.5, 64]) {
      expect(distributedDiscreteGaussianRdp({ l2Sensitivity: 3, localSigma: 6, noisyClients: 1, dim: 10 }, a)).toBeCloseTo((a * 9) / 72, 14)
    }
  })

  test('n shares of sigma behave like one of sqrt(n)*sigma once sigma is large', () => {
    const one = distributedDiscreteGaussianRdp({ l2Sensitivity: 10, localSigma: 40, noisyClients: 1, dim: 1000 }, 8)
    const many = distributedDiscreteGaussianRdp({ l2Sensitivity: 10, localSigma: 4, noisyClients: 100, dim: 1000 }, 8)
    expect(Math.abs(many - one) / one).toBeLessThan(1e-12)
  })

  test('Skellam RDP tends to the Gaussian RDP as the variance grows (AKL21)', () => {
    const mu = 1e8
    const sk = skellamRdp({ l2Sensitivity: 1e3, variance: mu, dim: 100 }, 10)
    expect(Math.abs(sk - (10 * 1e6) / (2 * mu)) / sk).toBeLessThan(1e-4)
  })

  test('subsampled distributed events: ZW19 Thm 5 >= the tight MTZ19 value, and <= the unsampled RDP', () => {
    fc.assert(
      fc.property(fc.double({ min: 0.001, max: 0.9, noNaN: true }), fc.double({ min: 0.7, max: 10, noNaN: true }), (q, z) => {
        // One huge discrete Gaussian share: same RDP curve as the Gaussian with multiplier z.
        const event = { kind: 'sampled-distributed-discrete-gaussian', samplingRate: q, l2Sensitivity: 1000, localSigma: 1000 * z, noisyClients: 1, dim: 1 } as const
        const zw = eventRdp(event, integerOrders)
        const mtz = sampledGaussianRdp(q, z, integerOrders)
        integerOrders.forEach((a, i) => {
          // log A_α ≈ 0 here: both sums carry ~1e-16 absolute rounding, hence the absolute slack.
          expect(zw[i]).toBeGreaterThanOrEqual((mtz[i] as number) * (1 - 1e-9) - 1e-14)
          expect(zw[i]).toBeLessThanOrEqual((a / (2 * z * z)) * (1 + 1e-12))
        })
      }),
      { numRuns: 20 },
    )
  })

  test('fractional orders take the next integer order (RDP is monotone in the order)', () => {
    const event = { kind: 'sampled-skellam', samplingRate: 0.1, l2Sensitivity: 100, variance: 1e5, dim: 50 } as const
    const curve = eventRdp(event, [2.5, 3])
    expect(curve[0]).toBe(curve[1])
  })

  test('rounding inflation (KLS21 §4.1)', () => {
    expect(roundedL2NormBound(100, 10_000)).toBe(200)
    const conditional = roundedL2NormBound(100, 10_000, Math.exp(-0.5))
    expect(conditional).toBeCloseTo(Math.sqrt(100 ** 2 + 2500 + 1 * (100 + 50)), 10)
    expect(() => roundedL2NormBound(1, 10, 1)).toThrow(/beta/)
  })
})

describe('planDistributedDp', () => {
  test.each(['discrete-gaussian', 'skellam'] as const)('%s: the sum fits in the modulus and the noise is sized for the minimum', (mechanism) => {
    fc.assert(
      fc.property(
        fc.integer({ min: 12, max: 32 }),
        fc.integer({ min: 2, max: 1000 }),
        fc.double({ min: 0.1, max: 0.99, noNaN: true }),
        fc.double({ min: 0.3, max: 3, noNaN: true }),
        (bits, maxClients, fraction, z) => {
          const noisyClients = Math.max(1, Math.floor(maxClients * fraction))
          let plan
          try {
            plan = planDistributedDp({ mechanism, bits, maxClients, noisyClients, clipNorm: 2, dim: 1000, noiseMultiplier: z })
          } catch (error) {
            expect(error).toBeInstanceOf(RangeError) // too few bits for this many clients: said clearly
            return
          }
          expect(plan.signalBound + plan.noiseBound).toBeLessThanOrEqual(2 ** (bits - 1) - 1)
          expect(plan.signalBound).toBeGreaterThanOrEqual(maxClients * (plan.scale * 2 + 1) * (1 - 1e-12))
          // Central noise with exactly noisyClients shares is z·C in original units.
          expect((Math.sqrt(noisyClients) * plan.localSigma) / plan.scale).toBeCloseTo(2 * z, 9)
          expect(plan.l2Sensitivity).toBeGreaterThan(plan.scale * 2)
        },
      ),
      { numRuns: 30 },
    )
  })

  test('with many bits the distributed mechanism costs little more than central DP', () => {
    const plan = planDistributedDp({ mechanism: 'discrete-gaussian', bits: 32, maxClients: 100, noisyClients: 80, clipNorm: 1, dim: 100_000, noiseMultiplier: 1 })
    expect(plan.effectiveNoiseMultiplier).toBeGreaterThan(0.999)
    const ddp = new RdpAccountant().compose(distributedDpEvent(plan, 0.01), 1000).epsilon(1e-5)
    const central = new RdpAccountant().compose({ kind: 'sampled-gaussian', samplingRate: 0.01, noiseMultiplier: 1 }, 1000).epsilon(1e-5)
    expect(ddp).toBeGreaterThanOrEqual(central)
    expect(ddp).toBeLessThan(central * 1.25) // the gap is ZW19's general subsampling bound
  })

  test("'rotated' (TFF heuristic) allows a larger scale than the worst case; Skellam plans compose too", () => {
    const base = { mechanism: 'skellam', bits: 20, maxClients: 100, noisyClients: 80, clipNorm: 1, dim: 100_000, noiseMultiplier: 1 } as const
    const worst = planDistributedDp(base)
    const rotated = planDistributedDp({ ...base, signalBound: 'rotated', wrapProbability: 1e-4 })
    expect(rotated.scale).toBeGreaterThan(worst.scale * 10)
    const eps = new RdpAccountant().compose(distributedDpEvent(worst, 0.01), 1000).epsilon(1e-5)
    expect(eps).toBeGreaterThan(2)
    expect(eps).toBeLessThan(4)
  })

  test('too few bits is a RangeError naming bits', () => {
    expect(() => planDistributedDp({ mechanism: 'skellam', bits: 4, maxClients: 100, noisyClients: 10, clipNorm: 1, dim: 10, noiseMultiplier: 1 })).toThrow(/bits/)
    expect(() => planDistributedDp({ mechanism: 'skellam', bits: 33, maxClients: 100, noisyClients: 10, clipNorm: 1, dim: 10, noiseMultiplier: 1 })).toThrow(/bits/)
    expect(() => planDistributedDp({ mechanism: 'skellam', bits: 20, maxClients: 10, noisyClients: 11, clipNorm: 1, dim: 10, noiseMultiplier: 1 })).toThrow(/noisyClients/)
  })
})
