import { readFileSync } from 'node:fs'
import { describe, expect, test } from 'vitest'
import fc from 'fast-check'
import {
  DEFAULT_RDP_ORDERS,
  RdpAccountant,
  assertWithinBudget,
  epsilonFromRdp,
  noiseMultiplierForEpsilon,
  sampledGaussianEpsilon,
  sampledGaussianRdp,
  sampledGaussianRdpAtOrder,
} from '../../protocol/dp/index.ts'
import { logErfc } from '../../protocol/dp/log-math.ts'
import { HearthError } from '../../protocol/errors.ts'

interface VectorCase {
  samplingRate: number
  noiseMultiplier: number
  rounds: number
  delta: number
  epsilon: number
  order: number
  dpAccountingEpsilon: number | null
  rdpPerRound: number[]
}
interface Vectors {
  orders: number[]
  cases: VectorCase[]
  logErfc: [number, number][]
}

// Independent values from test/dp/vectors/generate_sampled_gaussian.py (see its docstring).
const vectors = JSON.parse(readFileSync(new URL('./vectors/sampled-gaussian.json', import.meta.url), 'utf8')) as Vectors
const relErr = (x: number, ref: number): number => Math.abs(x - ref) / Math.abs(ref)

describe('sampled Gaussian accountant: known answers', () => {
  test('uses dp_accounting default orders', () => {
    expect(DEFAULT_RDP_ORDERS).toHaveLength(156)
    expect([...DEFAULT_RDP_ORDERS]).toEqual(vectors.orders)
  })

  // Google's dp_accounting, RdpAccountant with default orders (published in the project issue).
  test.each([
    [1.0, 5.0, 100, 1e-5, 10.7255],
    [0.1, 2.0, 100, 1e-5, 2.5806],
    [0.01, 1.1, 1000, 1e-5, 1.7118],
    [0.001, 1.0, 10000, 1e-6, 0.9795],
  ])('q=%f z=%f T=%i delta=%g matches dp_accounting epsilon %f within 0.5%% (observed < 1e-4)', (q, z, t, d, want) => {
    const { epsilon } = sampledGaussianEpsilon({ samplingRate: q, noiseMultiplier: z, rounds: t, delta: d })
    expect(relErr(epsilon, want)).toBeLessThan(1e-4)
  })

  test('q = 1 is the Gaussian mechanism exactly: RDP = alpha*T/(2 z^2)', () => {
    const rdp = sampledGaussianRdp(1, 3, DEFAULT_RDP_ORDERS)
    DEFAULT_RDP_ORDERS.forEach((a, i) => expect(rdp[i]).toBeCloseTo(a / 18, 14))
  })

  test.each(vectors.cases.map((c) => [c.samplingRate, c.noiseMultiplier, c.rounds, c] as const))(
    'independent Python reference q=%f z=%f T=%i',
    (_q, _z, _t, c) => {
      const rdp = sampledGaussianRdp(c.samplingRate, c.noiseMultiplier, DEFAULT_RDP_ORDERS)
      DEFAULT_RDP_ORDERS.forEach((a, i) => {
        const ours = rdp[i] as number
        const ref = c.rdpPerRound[i] as number
        if (Number.isInteger(a)) {
          // Exact rational/decimal binomial sum vs our log-space sum.
          expect(relErr(ours, ref)).toBeLessThan(1e-9)
        } else {
          // Quadrature of the defining integral; our series (dp_accounting's, with |C(a,i)|)
          // is an upper bound: never below it beyond rounding.
          expect(ours).toBeGreaterThanOrEqual(ref * (1 - 1e-9))
        }
      })
      const ours = epsilonFromRdp(DEFAULT_RDP_ORDERS, Array.from(rdp, (r) => r * c.rounds), c.delta)
      expect(ours.epsilon).toBeGreaterThanOrEqual(c.epsilon * (1 - 1e-9))
      expect(ours.epsilon).toBeLessThanOrEqual(c.epsilon * 1.06)
      if (c.dpAccountingEpsilon !== null) expect(relErr(ours.epsilon, c.dpAccountingEpsilon)).toBeLessThan(5e-3)
    },
  )

  test('log erfc matches 60-digit decimal values', () => {
    for (const [x, ref] of vectors.logErfc) {
      expect(Math.abs(logErfc(x) - ref)).toBeLessThanOrEqual(2e-15 * Math.max(1, Math.abs(ref)))
    }
  })
})

describe('sampled Gaussian accountant: properties', () => {
  const q = fc.double({ min: 1e-4, max: 1, noNaN: true })
  const z = fc.double({ min: 0.6, max: 20, noNaN: true })
  const t = fc.integer({ min: 1, max: 5000 })
  const eps = (samplingRate: number, noiseMultiplier: number, rounds: number): number =>
    sampledGaussianEpsilon({ samplingRate, noiseMultiplier, rounds, delta: 1e-5 }).epsilon

  test('epsilon grows with rounds and with q, falls with z', () => {
    fc.assert(
      fc.property(q, z, t, fc.double({ min: 1.01, max: 3, noNaN: true }), (qq, zz, tt, f) => {
        const base = eps(qq, zz, tt)
        expect(eps(qq, zz, tt + Math.ceil(tt * (f - 1)))).toBeGreaterThanOrEqual(base * (1 - 1e-12) - 1e-12)
        // In q only where the fractional orders' series is tight: with q near 1 and little noise
        // it is a loose upper bound (|C(α,i)|, as dp_accounting) and need not be monotone; see below.
        if (qq * f <= 0.5) expect(eps(qq * f, zz, tt)).toBeGreaterThanOrEqual(base * (1 - 1e-12) - 1e-12)
        expect(eps(qq, zz * f, tt)).toBeLessThanOrEqual(base * (1 + 1e-12) + 1e-12)
      }),
      { numRuns: 25 },
    )
  })

  test('fractional orders are upper bounds of the exact RDP where the series is loose', () => {
    // Exact RDP of the sampled Gaussian, log(∫ μ0 (1 − q + q μ1/μ0)^α) / (α − 1), by numerical
    // integration in mpmath at 50 digits (independent of this code), σ = 0.6. Here the series
    // over-estimates or does not converge (+Infinity: the order is dropped), never under-estimates.
    const exact: [q: number, order: number, rdp: number][] = [
      [0.7103745356320984, 1.1, 0.8806366600995953],
      [0.7103745356320984, 1.6, 1.5502042471572302],
      [0.9715, 1.2, 1.595151507730992],
      [0.9715, 1.6, 2.1601881571094403],
      [0.99, 1.1, 1.501451733272097],
      [0.99, 3, 4.151649770910304],
    ]
    for (const [qq, order, rdp] of exact) {
      const ours = sampledGaussianRdpAtOrder(qq, 0.6, order)
      expect(ours).toBeGreaterThanOrEqual(rdp * (1 - 1e-12))
      if (Number.isFinite(ours)) expect(ours).toBeLessThan(rdp * 1.01)
    }
  })

  test('the inverse round-trips: eps(z*) <= target and z* is within tolerance of the smallest', () => {
    fc.assert(
      fc.property(q, t, fc.double({ min: 0.3, max: 12, noNaN: true }), (qq, tt, target) => {
        const tolerance = 1e-6
        const found = noiseMultiplierForEpsilon({ samplingRate: qq, rounds: tt, epsilon: target, delta: 1e-5, tolerance })
        expect(found.epsilon).toBeLessThanOrEqual(target)
        expect(eps(qq, found.noiseMultiplier, tt)).toBeCloseTo(found.epsilon, 12)
        expect(eps(qq, found.noiseMultiplier * (1 - 2 * tolerance), tt)).toBeGreaterThan(target)
      }),
      { numRuns: 12 },
    )
  })

  test('the inverse finds the published z for the known answers', () => {
    const found = noiseMultiplierForEpsilon({ samplingRate: 0.01, rounds: 1000, epsilon: 1.7118, delta: 1e-5 })
    expect(relErr(found.noiseMultiplier, 1.1)).toBeLessThan(1e-4)
  })
})

describe('RdpAccountant', () => {
  const a = { kind: 'sampled-gaussian', samplingRate: 0.01, noiseMultiplier: 1.1 } as const
  const b = { kind: 'sampled-gaussian', samplingRate: 0.05, noiseMultiplier: 2 } as const

  test('composing heterogeneous events adds their RDP curves, in any order', () => {
    const one = new RdpAccountant().compose(a, 300).compose(b, 20).compose(a, 700)
    const two = new RdpAccountant().compose(b, 20).compose(a, 1000)
    const rdpA = sampledGaussianRdp(0.01, 1.1, DEFAULT_RDP_ORDERS)
    const rdpB = sampledGaussianRdp(0.05, 2, DEFAULT_RDP_ORDERS)
    one.rdp.forEach((r, i) => {
      expect(r).toBeCloseTo(1000 * (rdpA[i] as number) + 20 * (rdpB[i] as number), 9)
      expect(r).toBeCloseTo(two.rdp[i] as number, 9)
    })
    expect(one.rounds).toBe(1020)
    expect(one.epsilon(1e-5)).toBeGreaterThan(new RdpAccountant().compose(a, 1000).epsilon(1e-5))
  })

  test('replaying one round at a time equals composing the count at once', () => {
    const replay = new RdpAccountant()
    for (let i = 0; i < 1000; i++) replay.compose(a)
    expect(relErr(replay.epsilon(1e-5), new RdpAccountant().compose(a, 1000).epsilon(1e-5))).toBeLessThan(1e-12)
  })

  test('an empty accountant spends nothing; delta(epsilon) inverts epsilon(delta)', () => {
    const acc = new RdpAccountant()
    expect(acc.epsilon(1e-5)).toBe(0)
    acc.compose(a, 1000)
    const { epsilon, order } = acc.epsilonAndOrder(1e-5)
    const back = acc.deltaAndOrder(epsilon)
    expect(back.order).toBe(order)
    expect(relErr(back.delta, 1e-5)).toBeLessThan(1e-9)
  })

  test('refuses a round that would exceed the budget, with a typed error, leaving the ledger unchanged', () => {
    const acc = new RdpAccountant().compose(a, 999)
    const budget = { epsilon: 1.7118, delta: 1e-5 }
    expect(assertWithinBudget(acc, a, budget).epsilon).toBeLessThanOrEqual(1.7118)
    expect(acc.rounds).toBe(999)
    acc.compose(a)
    try {
      assertWithinBudget(acc, a, budget)
      expect.unreachable()
    } catch (error) {
      expect(error).toBeInstanceOf(HearthError)
      expect((error as HearthError).code).toBe('HEARTH_ERR_PRIVACY_BUDGET_EXCEEDED')
      expect((error as HearthError).statusCode).toBe(409)
    }
    expect(acc.rounds).toBe(1000)
  })

  test('bad arguments throw RangeError/TypeError naming the parameter', () => {
    expect(() => sampledGaussianRdp(1.5, 1, DEFAULT_RDP_ORDERS)).toThrow(/samplingRate/)
    expect(() => sampledGaussianRdp(0.1, -1, DEFAULT_RDP_ORDERS)).toThrow(RangeError)
    expect(() => sampledGaussianRdp(0.1, 1, [0.5])).toThrow(/orders/)
    expect(() => new RdpAccountant().compose(a, 1.5)).toThrow(/count/)
    expect(() => new RdpAccountant().epsilon(0)).toThrow(/delta/)
    expect(() => sampledGaussianEpsilon({ samplingRate: 0.1, noiseMultiplier: Number.NaN, rounds: 1, delta: 1e-5 })).toThrow(/noiseMultiplier/)
    expect(() => sampledGaussianRdp('0.1' as unknown as number, 1, DEFAULT_RDP_ORDERS)).toThrow(TypeError)
    expect(() => noiseMultiplierForEpsilon({ samplingRate: 0.1, rounds: 10, epsilon: -1, delta: 1e-5 })).toThrow(/epsilon/)
  })

  test('edge cases: q = 0 or no noise', () => {
    expect(sampledGaussianEpsilon({ samplingRate: 0, noiseMultiplier: 0, rounds: 100, delta: 1e-5 }).epsilon).toBe(0)
    expect(sampledGaussianEpsilon({ samplingRate: 0.1, noiseMultiplier: 0, rounds: 1, delta: 1e-5 }).epsilon).toBe(Infinity)
    expect(noiseMultiplierForEpsilon({ samplingRate: 0, rounds: 10, epsilon: 1, delta: 1e-5 }).noiseMultiplier).toBe(0)
  })
})
