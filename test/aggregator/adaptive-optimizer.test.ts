import { describe, expect, it } from 'vitest'
import { AdaptiveOptimizer } from '../../aggregator/rounds/adaptive-optimizer.ts'
import type { AdaptiveKind } from '../../aggregator/rounds/adaptive-optimizer.ts'
import { HearthError } from '../../protocol/errors.ts'

const START = Float32Array.from([0.5, -0.25, 0])
// Mean deltas of two rounds, given as sums over `count` clients to exercise the division.
const ROUNDS = [
  { sum: Float64Array.from([2, -4, 0]), count: 2 },
  { sum: Float64Array.from([2, 1, -4]), count: 4 },
]

// Computed independently in float64 by a line-by-line Python transcription of Reddi et al. 2021,
// Algorithm 2 (η = 0.1, β1 = 0.9, β2 = 0.99, τ = 1e-3, v₋₁ = τ²), not by this code.
const KNOWN: Record<AdaptiveKind, number[][]> = {
  fedadagrad: [
    [0.5099900049999988, -0.2599950012499999, 0],
    [0.5225007906827889, -0.26768134035639585, -0.009990004999998749],
  ],
  fedadam: [
    [0.5990050488825424, -0.3495012623676586, 0],
    [0.7236048965290557, -0.42639985593334295, -0.09900509740007515],
  ],
  fedyogi: [
    [0.5990049998750062, -0.34950124999218757, 0],
    [0.7231098153070921, -0.42602219345057013, -0.0990049998750062],
  ],
}

describe('adaptive server optimizers (Reddi et al. 2021)', () => {
  for (const kind of ['fedadagrad', 'fedadam', 'fedyogi'] as const) {
    it(`${kind} matches an independent computation over two rounds`, () => {
      const optimizer = new AdaptiveOptimizer(kind)
      let weights: Float32Array = START
      ROUNDS.forEach((round, t) => {
        weights = optimizer.step(weights, round)
        const expected = KNOWN[kind][t] as number[]
        expected.forEach((value, i) => expect(weights[i]).toBeCloseTo(value, 6))
      })
      expect(optimizer.name).toBe(kind)
    })
  }

  it('decays the server rate by γ per round, through a restart', () => {
    // The same independent transcription with η_t = 0.1 · 0.5^t.
    const expected = [
      [0.5990050488825424, -0.3495012623676586, 0],
      [0.661304972705799, -0.3879505591505008, -0.04950254870003758],
    ]
    const first = new AdaptiveOptimizer('fedadam', { learningRateDecay: 0.5 })
    const once = first.step(START, ROUNDS[0]!)
    const twice = first.resume(first.state()).step(once, ROUNDS[1]!)
    ;[once, twice].forEach((weights, t) => (expected[t] as number[]).forEach((value, i) => expect(weights[i]).toBeCloseTo(value, 6)))
    expect(() => new AdaptiveOptimizer('fedadam', { learningRateDecay: 1.5 })).toThrow(/learningRateDecay/)
    expect(() => new AdaptiveOptimizer('fedadam', { learningRateDecay: 0 })).toThrow(/learningRateDecay/)
  })

  it('scales η for the named tensors only, the moments unchanged, through a restart', () => {
    // The step is η·m/(√v + τ) with m and v independent of η, so a factor f on a tensor moves
    // its coordinates by f times the independent computation's step and leaves the others.
    const layout = [
      { tensor: { name: 'a', shape: [2], federated: true, init: { kind: 'zeros' } }, offset: 0, size: 2 },
      { tensor: { name: 'b', shape: [1], federated: true, init: { kind: 'zeros' } }, offset: 2, size: 1 },
    ] as const
    const first = new AdaptiveOptimizer('fedadam', { tensorLearningRates: { b: 0.25 } })
    const once = first.step(START, ROUNDS[0]!, layout)
    const unscaled = new AdaptiveOptimizer('fedadam')
    unscaled.step(START, ROUNDS[0]!)
    expect(first.state()).toEqual(unscaled.state())
    const twice = first.resume(first.state()).step(once, ROUNDS[1]!, layout)
    const known = KNOWN.fedadam
    expect(once[0]).toBeCloseTo(known[0]![0]!, 6)
    expect(once[1]).toBeCloseTo(known[0]![1]!, 6)
    expect(once[2]).toBe(0) // the first round's delta for b is 0
    expect(twice[0]).toBeCloseTo(known[1]![0]!, 6)
    expect(twice[2]).toBeCloseTo(0.25 * known[1]![2]!, 6)
    expect(() => new AdaptiveOptimizer('fedadam', { tensorLearningRates: { b: 0 } })).toThrow(/tensorLearningRates\.b/)
    expect(() => first.step(START, ROUNDS[0]!)).toThrow(expect.objectContaining({ code: 'HEARTH_ERR_INVALID_CONFIG' }))
  })

  it('resumes from a saved state exactly as if it had never stopped', () => {
    const straight = new AdaptiveOptimizer('fedadam')
    const first = straight.step(START, ROUNDS[0]!)
    const saved = straight.state()
    expect(saved?.rounds).toBe(1)
    const resumed = new AdaptiveOptimizer('fedadam', {}, saved!)
    expect(Array.from(resumed.step(first, ROUNDS[1]!))).toEqual(Array.from(straight.step(first, ROUNDS[1]!)))
  })

  it('does not modify the current weights or the saved state', () => {
    const optimizer = new AdaptiveOptimizer('fedyogi')
    const current = Float32Array.from(START)
    optimizer.step(current, ROUNDS[0]!)
    expect(Array.from(current)).toEqual(Array.from(START))
    const state = optimizer.state()!
    const m0 = state.m[0]
    optimizer.step(current, ROUNDS[1]!)
    expect(state.m[0]).toBe(m0)
  })

  it('refuses bad hyper-parameters and mismatched vectors with typed errors', () => {
    expect(() => new AdaptiveOptimizer('fedadam', { beta1: 1 })).toThrow(HearthError)
    expect(() => new AdaptiveOptimizer('fedadam', { tau: 0 })).toThrow(/tau/)
    expect(() => new AdaptiveOptimizer('fedadam', { learningRate: Number.NaN })).toThrow(/learningRate/)
    const optimizer = new AdaptiveOptimizer('fedadam')
    expect(() => optimizer.step(START, { sum: new Float64Array(2), count: 1 })).toThrow(expect.objectContaining({ code: 'HEARTH_ERR_MODEL_MISMATCH' }))
    optimizer.step(START, ROUNDS[0]!)
    expect(() => optimizer.step(new Float32Array(4), { sum: new Float64Array(4), count: 1 })).toThrow(expect.objectContaining({ code: 'HEARTH_ERR_MODEL_MISMATCH' }))
  })

  it('FedAdam minimizes a noisy quadratic faster than FedAvg at the same server rate', () => {
    // Clients' mean delta is a gradient step on f(x) = ½ Σ a_i x_i² with badly scaled a_i.
    const scales = [100, 1, 0.01]
    const deltaAt = (x: Float32Array): Float64Array => Float64Array.from(x, (xi, i) => -0.001 * (scales[i] as number) * xi)
    const loss = (x: Float32Array): number => x.reduce((s, xi, i) => s + 0.5 * (scales[i] as number) * xi * xi, 0)
    let adam: Float32Array = Float32Array.from([1, 1, 1])
    let avg = Float32Array.from([1, 1, 1])
    const optimizer = new AdaptiveOptimizer('fedadam', { learningRate: 0.05 })
    for (let t = 0; t < 200; t++) {
      adam = optimizer.step(adam, { sum: deltaAt(adam), count: 1 })
      const d = deltaAt(avg)
      avg = Float32Array.from(avg, (xi, i) => xi + (d[i] as number))
    }
    expect(loss(adam)).toBeLessThan(loss(avg) / 2)
  })
})
