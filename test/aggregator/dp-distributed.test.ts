/**
 * Distributed DP without sockets: option validation (each refusal names its option), the
 * defaults and the accounted worst case, the plan a model gets (and its refusal when the modulus
 * cannot hold it), and the noise-shortfall check. The real rounds are in `secagg-round.test.ts`.
 */
import { describe, expect, test } from 'vitest'
import { resolveOptions } from '../../aggregator/options.ts'
import type { RoundOptions } from '../../aggregator/options.ts'
import { noiseShortfall } from '../../aggregator/privacy/distributed-dp.ts'
import { ModelPrivacy } from '../../aggregator/privacy/model-privacy.ts'
import type { PrivacyOptions } from '../../aggregator/privacy/options.ts'
import { MemoryStore } from '../../aggregator/store/memory-store.ts'
import { distributedDpEvent, planDistributedDp } from '../../protocol/dp/index.ts'
import { HearthError } from '../../protocol/errors.ts'

const base = { mode: 'distributed', clipNorm: 1, noiseMultiplier: 1, budget: { epsilon: 8, delta: 1e-6 } } as const

function rounds(privacy: Partial<PrivacyOptions>, extra: RoundOptions = {}): RoundOptions {
  return { minCohort: 10, maxCohort: 20, aggregation: 'secagg', ...extra, privacy: { ...base, ...privacy } }
}

describe('distributed DP options', () => {
  test('defaults: discrete Gaussian, minSurvivors ⌈(1 − expectedDropout)·min(minCohort, group)⌉, shares net of the user and colluders', () => {
    const resolved = resolveOptions({ rounds: rounds({}) }).rounds.privacy
    // maxClients = min(maxGroupSize 500, maxCohort 20) = 20; ⌈0.9 · 10⌉ = 9; 9 − 1 − ⌊0.05 · 20⌋ = 7.
    expect(resolved?.distributed).toEqual({ mechanism: 'discrete-gaussian', minSurvivors: 9, maxClients: 20, noisyClients: 7, modulusBits: 32 })
  })

  test('Poisson sampling: the largest group bounds a sum', () => {
    const resolved = resolveOptions({ rounds: rounds({ mechanism: 'skellam', minSurvivors: 15, expectedCohortSize: 30 }, { sampling: { kind: 'poisson', rate: 0.1 }, secagg: { maxGroupSize: 50 } }) }).rounds.privacy
    expect(resolved?.distributed).toEqual({ mechanism: 'skellam', minSurvivors: 15, maxClients: 50, noisyClients: 15 - 1 - 2, modulusBits: 32 })
  })

  test('refuses what would break the guarantee, naming the option', () => {
    const cases: [RoundOptions, RegExp][] = [
      [{ minCohort: 10, maxCohort: 20, privacy: base }, /rounds.privacy.mode 'distributed' needs rounds.aggregation 'secagg'/],
      [rounds({ adaptiveClipping: true }), /rounds.privacy.adaptiveClipping is not available with mode 'distributed'/],
      [rounds({ mechanism: 'laplace' as 'skellam' }), /rounds.privacy.mechanism must be 'discrete-gaussian' or 'skellam'/],
      [rounds({ minSurvivors: 21 }), /rounds.privacy.minSurvivors must be an integer in \[2, 20\]/],
      [rounds({ minSurvivors: 2.5 }), /rounds.privacy.minSurvivors must be an integer/],
      [rounds({ minSurvivors: 3 }, { secagg: { corruptFraction: 0.2 } }), /rounds.privacy.minSurvivors \(3\) leaves no honest noise share/],
      [{ maxCohort: 20, privacy: { ...base, mode: 'central', mechanism: 'skellam' } }, /rounds.privacy.mechanism applies only with mode 'distributed'/],
      [{ maxCohort: 20, privacy: { ...base, mode: 'central', minSurvivors: 5 } }, /rounds.privacy.minSurvivors applies only with mode 'distributed'/],
    ]
    for (const [options, message] of cases) {
      expect(() => resolveOptions({ rounds: options })).toThrow(message)
      expect(() => resolveOptions({ rounds: options })).toThrow(HearthError)
    }
  })
})

describe('a model under distributed DP', () => {
  async function open(options: RoundOptions, vectorLength = 18): Promise<ModelPrivacy> {
    const resolved = resolveOptions({ rounds: options }).rounds
    return ModelPrivacy.open({
      store: new MemoryStore(),
      model: 'm',
      vectorLength,
      privacy: resolved.privacy!,
      sampling: resolved.sampling,
      strategy: resolved.strategy,
      secagg: resolved.secagg,
    })
  }

  test('plans the private upload (d + 1 elements, norm √(C² + ¼)) for the largest group; the event is distributedDpEvent', async () => {
    const privacy = await open(rounds({}))
    const planned = privacy.plan()
    const plan = planDistributedDp({ mechanism: 'discrete-gaussian', bits: 32, maxClients: 20, noisyClients: 7, clipNorm: Math.hypot(1, 0.5), dim: 19, noiseMultiplier: 1 })
    expect(planned.event).toEqual(distributedDpEvent(plan, 1))
    expect(planned.distributed).toEqual({ plan, minSurvivors: 9 })
    expect(planned.message).toEqual({ mode: 'distributed', clipNorm: 1, mechanism: 'discrete-gaussian', scale: plan.scale, localVariance: plan.localVariance })
    expect(planned.record).toMatchObject({ mode: 'distributed', effectiveNoiseMultiplier: plan.effectiveNoiseMultiplier, denominator: 20 })
    expect(planned.record.trustAssumption).toMatch(/only ever sees noised sums/)
  })

  test('a modulus that cannot hold the noise is refused at start', async () => {
    // 8 bits for groups of 100: the rounding alone takes 100 of the 127 levels, and the noise
    // share left is below ½ (KLS21 Theorem 1 needs σ >= ½).
    await expect(open(rounds({}, { maxCohort: 100, secagg: { modulusBits: 8, maxGroupSize: 100 } }))).rejects.toThrow(/rounds.privacy \(distributed\) cannot be planned/)
  })

  test('past the budget, the round is refused before it opens', async () => {
    const privacy = await open(rounds({ budget: { epsilon: 0.01, delta: 1e-6 } }))
    expect(() => privacy.plan()).toThrow(expect.objectContaining({ code: 'HEARTH_ERR_PRIVACY_BUDGET_EXCEEDED' }))
  })
})

describe('noiseShortfall', () => {
  test('names each completed group below minSurvivors; aborted groups release nothing and do not count', () => {
    const sum = new Uint32Array(2)
    const outcomes = [
      { groupId: 0, clients: 5, sum, survivors: 5 },
      { groupId: 1, clients: 5, sum, survivors: 3 },
      { groupId: 2, clients: 5 },
    ]
    expect(noiseShortfall(outcomes, 3)).toBeUndefined()
    const error = noiseShortfall(outcomes, 4)
    expect(error).toMatchObject({ code: 'HEARTH_ERR_PRIVACY_NOISE_SHORTFALL', message: expect.stringContaining('group 1 has 3') })
    expect(error?.message).not.toContain('group 2')
  })
})
