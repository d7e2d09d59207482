/**
 * The differential-privacy options of the aggregator (`rounds.privacy`), their defaults and their
 * validation. `options.ts` calls {@link resolvePrivacy}; everything downstream reads the
 * resolved form.
 */
import type { PrivacyBudget } from '../../protocol/dp/budget.ts'
import { HearthError } from '../../protocol/errors.ts'
import type { DistributedNoiseMechanism, PrivacyMode } from '../../protocol/messages.ts'
import type { ResolvedSecAgg } from '../rounds/secagg-options.ts'
import type { SamplingConfig } from '../store/store.ts'
import { defaultCountNoise, deltaNoiseMultiplier } from './adaptive-clipping.ts'

/**
 * The budget of each model when none is configured: ε = 8, δ = 10^−6.
 *
 * - ε = 8 is in the range of deployed user-level guarantees for federated models (single-digit
 *   ε), strong enough to bound membership inference while leaving room for the few hundred
 *   noisy rounds a model needs; lower it when the review asks for more.
 * - δ must be well below 1/N for N users: (ε, δ)-DP allows a total failure with probability δ.
 *   10^−6 <= N^−1.1 for N up to about 280,000 users (the "δ = 1/N^1.1" convention). Set a smaller
 *   δ for a larger population: the aggregator cannot know N.
 */
export const DEFAULT_PRIVACY_BUDGET: PrivacyBudget = Object.freeze({ epsilon: 8, delta: 1e-6 })

/** Adaptive clipping (ATMR21). Every field optional. */
export interface AdaptiveClippingOptions {
  /** γ: the quantile of update norms C tracks, in (0, 1). Default 0.5 (ATMR21 §4). */
  readonly targetQuantile?: number
  /** η_C of the geometric update, > 0. Default 0.2 (ATMR21 §4). */
  readonly learningRate?: number
  /** σ_b: noise on the sum of clipping indicators. Default max(m/20, z); must exceed z/2. */
  readonly countNoise?: number
}

/** Differential privacy for every model's rounds (`rounds.privacy`). */
export interface PrivacyOptions {
  /**
   * `central`: clients clip, the aggregator adds Gaussian noise to the sum (trusts the aggregator).
   * `distributed`: clients add integer noise shares before masking, so the aggregator sees only
   * noised sums; needs `rounds.aggregation: 'secagg'`.
   */
  readonly mode: PrivacyMode
  /** C: the L2 clip norm of each client's delta (the initial one with adaptive clipping). */
  readonly clipNorm: number
  /** z: noise standard deviation over C on the sum of clipped deltas (z > 0). */
  readonly noiseMultiplier: number
  /** Each model's (ε, δ) budget. Default {@link DEFAULT_PRIVACY_BUDGET}. */
  readonly budget?: PrivacyBudget
  /**
   * m: the fixed denominator of the mean, the expected cohort size (MRTZ18's fixed-denominator
   * estimator: dividing by the realized count would make the released mean depend on it).
   * Default `maxCohort` with uniform sampling; required with Poisson sampling (q × the number of
   * users expected to wait at selection).
   */
  readonly expectedCohortSize?: number
  /** Adaptive clipping; `true` for the defaults. Default off. */
  readonly adaptiveClipping?: boolean | AdaptiveClippingOptions
  /** σ/g of the central noise grid, as `gridGaussianNoise` takes it. Default 20. */
  readonly gridBits?: number
  /** Distributed mode: the devices' noise, `discrete-gaussian` (default) or `skellam`. */
  readonly mechanism?: DistributedNoiseMechanism
  /**
   * Distributed mode: the fewest devices whose noise shares must be in a group's sum for it to be
   * published. The noise is sized so that this worst case still gives z (see
   * {@link ResolvedDistributed.noisyClients}); a round in which a group's sum holds fewer is
   * aborted with `HEARTH_ERR_PRIVACY_NOISE_SHORTFALL`. Default ⌈(1 − expectedDropout) ·
   * min(minCohort, largest group)⌉.
   */
  readonly minSurvivors?: number
}

/** What distributed DP fixed at start (the plan itself depends on the model's size). */
export interface ResolvedDistributed {
  readonly mechanism: DistributedNoiseMechanism
  readonly minSurvivors: number
  /** The largest group a sum can come from: what the modulus must hold without wrapping. */
  readonly maxClients: number
  /**
   * The noise shares the accountant counts on: minSurvivors − 1 (the user, whose share leaves
   * with them in the neighbouring dataset) − ⌊corruptFraction · maxClients⌋ (devices that may
   * collude with the aggregator and withhold or reveal their share).
   */
  readonly noisyClients: number
  readonly modulusBits: number
}

export interface ResolvedAdaptiveClipping {
  readonly targetQuantile: number
  readonly learningRate: number
  readonly countNoise: number
}

export interface ResolvedPrivacy {
  readonly mode: PrivacyMode
  readonly clipNorm: number
  readonly noiseMultiplier: number
  readonly budget: PrivacyBudget
  readonly expectedCohortSize: number
  readonly adaptiveClipping: ResolvedAdaptiveClipping | null
  /** z_Δ: the delta's noise over C, z without adaptive clipping (ATMR21 §3 with it). */
  readonly deltaNoiseMultiplier: number
  readonly gridBits: number
  /** The distributed mode's settings; null in central mode. */
  readonly distributed: ResolvedDistributed | null
}

/** The cohort bounds and secure aggregation that `privacy` must fit. */
export interface PrivacyContext {
  readonly sampling: SamplingConfig
  readonly minCohort: number
  readonly maxCohort: number
  readonly secagg: ResolvedSecAgg | null
}

/**
 * Applies defaults and validates `privacy` for rounds of `context`. Throws
 * `HEARTH_ERR_INVALID_CONFIG` naming the option.
 */
export function resolvePrivacy(privacy: PrivacyOptions, context: PrivacyContext): ResolvedPrivacy {
  const { sampling, maxCohort } = context
  if (privacy.mode !== 'central' && privacy.mode !== 'distributed') invalid('rounds.privacy.mode', `must be 'central' or 'distributed', got ${String(privacy.mode)}`)
  if (privacy.mode === 'central') {
    if (privacy.mechanism !== undefined) invalid('rounds.privacy.mechanism', "applies only with mode 'distributed'")
    if (privacy.minSurvivors !== undefined) invalid('rounds.privacy.minSurvivors', "applies only with mode 'distributed'")
  }
  const clipNorm = positive('rounds.privacy.clipNorm', privacy.clipNorm)
  const noiseMultiplier = positive('rounds.privacy.noiseMultiplier', privacy.noiseMultiplier)
  const budget = privacy.budget ?? DEFAULT_PRIVACY_BUDGET
  positive('rounds.privacy.budget.epsilon', budget.epsilon)
  if (!(budget.delta > 0 && budget.delta < 1)) invalid('rounds.privacy.budget.delta', `must be in (0, 1), got ${budget.delta}`)
  if (sampling.kind === 'poisson' && privacy.expectedCohortSize === undefined) {
    invalid('rounds.privacy.expectedCohortSize', 'is required with Poisson sampling: q times the number of users expected to wait at selection')
  }
  const expectedCohortSize = positive('rounds.privacy.expectedCohortSize', privacy.expectedCohortSize ?? maxCohort)
  const gridBits = privacy.gridBits ?? 20
  if (!Number.isInteger(gridBits) || gridBits < 0 || gridBits > 40) invalid('rounds.privacy.gridBits', `must be an integer in [0, 40], got ${gridBits}`)

  let adaptiveClipping: ResolvedAdaptiveClipping | null = null
  let zDelta = noiseMultiplier
  if (privacy.adaptiveClipping !== undefined && privacy.adaptiveClipping !== false) {
    const options = privacy.adaptiveClipping === true ? {} : privacy.adaptiveClipping
    const targetQuantile = options.targetQuantile ?? 0.5
    if (!(targetQuantile > 0 && targetQuantile < 1)) invalid('rounds.privacy.adaptiveClipping.targetQuantile', `must be in (0, 1), got ${targetQuantile}`)
    const learningRate = positive('rounds.privacy.adaptiveClipping.learningRate', options.learningRate ?? 0.2)
    const countNoise = positive('rounds.privacy.adaptiveClipping.countNoise', options.countNoise ?? defaultCountNoise(expectedCohortSize, noiseMultiplier))
    try {
      zDelta = deltaNoiseMultiplier(noiseMultiplier, countNoise)
    } catch (error) {
      invalid('rounds.privacy.adaptiveClipping.countNoise', (error as Error).message)
    }
    adaptiveClipping = { targetQuantile, learningRate, countNoise }
  }
  const distributed = privacy.mode === 'distributed' ? resolveDistributed(privacy, context, adaptiveClipping !== null) : null
  return {
    mode: privacy.mode,
    clipNorm,
    noiseMultiplier,
    budget: { epsilon: budget.epsilon, delta: budget.delta },
    expectedCohortSize,
    adaptiveClipping,
    deltaNoiseMultiplier: zDelta,
    gridBits,
    distributed,
  }
}

function resolveDistributed(privacy: PrivacyOptions, context: PrivacyContext, adaptive: boolean): ResolvedDistributed {
  const secagg = context.secagg
  if (secagg === null) invalid('rounds.privacy.mode', "'distributed' needs rounds.aggregation 'secagg': the noise shares are only private inside masked sums")
  // The indicator sum would need its own noise and count query (ATMR21); not built for this mode.
  if (adaptive) invalid('rounds.privacy.adaptiveClipping', "is not available with mode 'distributed'")
  const mechanism = privacy.mechanism ?? 'discrete-gaussian'
  if (mechanism !== 'discrete-gaussian' && mechanism !== 'skellam') invalid('rounds.privacy.mechanism', `must be 'discrete-gaussian' or 'skellam', got ${String(mechanism)}`)
  // Poisson cohorts are not capped, so only the group size bounds a sum.
  const maxClients = context.sampling.kind === 'poisson' ? secagg.maxGroupSize : Math.min(secagg.maxGroupSize, context.maxCohort)
  const minSurvivors = privacy.minSurvivors ?? Math.ceil((1 - secagg.expectedDropout) * Math.min(context.minCohort, maxClients))
  if (!Number.isInteger(minSurvivors) || minSurvivors < 2 || minSurvivors > maxClients) {
    invalid('rounds.privacy.minSurvivors', `must be an integer in [2, ${maxClients}] (the largest group), got ${String(minSurvivors)}`)
  }
  const colluders = Math.floor(secagg.corruptFraction * maxClients)
  const noisyClients = minSurvivors - 1 - colluders
  if (noisyClients < 1) {
    invalid('rounds.privacy.minSurvivors', `(${minSurvivors}) leaves no honest noise share once the user and ${colluders} possibly colluding devices (rounds.secagg.corruptFraction) are discounted`)
  }
  return { mechanism, minSurvivors, maxClients, noisyClients, modulusBits: secagg.modulusBits }
}

/**
 * Validates `sampling` (`rounds.sampling`); default uniform.
 */
export function resolveSampling(sampling: SamplingConfig | undefined): SamplingConfig {
  if (sampling === undefined || sampling.kind === 'uniform') return { kind: 'uniform' }
  if (sampling.kind !== 'poisson') invalid('rounds.sampling.kind', `must be 'uniform' or 'poisson', got ${String((sampling as { kind?: unknown }).kind)}`)
  if (!(sampling.rate > 0 && sampling.rate <= 1)) invalid('rounds.sampling.rate', `must be in (0, 1], got ${sampling.rate}`)
  return { kind: 'poisson', rate: sampling.rate }
}

function positive(name: string, value: number): number {
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) invalid(name, `must be a finite number > 0, got ${String(value)}`)
  return value
}

function invalid(option: string, detail: string): never {
  throw new HearthError('HEARTH_ERR_INVALID_CONFIG', `${option} ${detail}`)
}
