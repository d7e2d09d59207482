/**
 * One model's privacy bookkeeping: its RDP accountant (replayed from the durable ledger at
 * start), its budget, its current clip norm, and the one decision that matters most — whether
 * the next round may run at all.
 *
 * Life of a DP round, as the round engine drives it:
 *   1. {@link ModelPrivacy.plan}, before selection opens: plans the noise and the accountant's
 *      event for the current clip norm and refuses (`HEARTH_ERR_PRIVACY_BUDGET_EXCEEDED`) if the
 *      round, once published, would take ε past the budget. A refused round never opens.
 *   2. The round runs with the planned {@link CentralDpStrategy}, or in distributed mode with the
 *      planned integer noise shares, which devices add (`distributed-dp.ts`).
 *   3. {@link ModelPrivacy.conclude}: the ledger entry and the next state, which the store
 *      writes in the transaction that publishes the version.
 *   4. {@link ModelPrivacy.committed}, once that transaction is durable: composes the event into
 *      the accountant and moves the clip norm. A round that does not publish releases nothing
 *      and is not charged.
 */
import { RdpAccountant } from '../../protocol/dp/accountant.ts'
import { distributedDpEvent } from '../../protocol/dp/distributed-params.ts'
import { assertWithinBudget, epsilonAfter } from '../../protocol/dp/budget.ts'
import type { EpsilonAndOrder } from '../../protocol/dp/conversion.ts'
import type { PrivacyEvent } from '../../protocol/dp/events.ts'
import type { RandomBits } from '../../protocol/dp/sampling/random.ts'
import { HearthError } from '../../protocol/errors.ts'
import type { RoundPrivacyPlan } from '../../protocol/messages.ts'
import { quantizationStep, secureQuantization } from '../rounds/secagg-options.ts'
import type { ResolvedSecAgg } from '../rounds/secagg-options.ts'
import type { AggregatePrivacyReport, AggregateResult, AggregationStrategy } from '../rounds/strategy.ts'
import type {
  AggregatorStore,
  ClippingOutcome,
  PrivacyCommit,
  PrivacyParameters,
  PrivacyRefusal,
  RoundPrivacyRecord,
  SamplingConfig,
} from '../store/store.ts'
import { nextClipNorm } from './adaptive-clipping.ts'
import { CentralDpStrategy } from './central-dp.ts'
import { planCentralNoise } from './central-noise.ts'
import { finishDistributedSum, planDistributed } from './distributed-dp.ts'
import type { DistributedSum } from './distributed-dp.ts'
import type { ResolvedPrivacy } from './options.ts'
import { SECURE_CENTRAL_TRUST, TRUST_ASSUMPTIONS } from './trust.ts'

export interface ModelPrivacyOptions {
  readonly store: AggregatorStore
  readonly model: string
  /** d: elements of the model's federated vector. */
  readonly vectorLength: number
  readonly privacy: ResolvedPrivacy
  readonly sampling: SamplingConfig
  /** The strategy the DP wrapper wraps (plain summation). */
  readonly strategy: AggregationStrategy
  /**
   * Secure aggregation, when rounds use it: the sum then arrives quantized, which the noise plan
   * accounts for (`central-noise.ts`).
   */
  readonly secagg?: ResolvedSecAgg | null
  /** Noise randomness; default the platform CSPRNG. */
  readonly random?: RandomBits
}

/** A round's privacy, planned before it opened. */
export interface PlannedPrivacy {
  /** C of the round. */
  readonly clipNorm: number
  /** What the accountant composes if the round publishes. */
  readonly event: PrivacyEvent
  /** The round record's privacy part, before aggregation. */
  readonly record: RoundPrivacyRecord
  /**
   * The strategy of a round without secure aggregation: central DP's wrapper, which checks the
   * clip norm and adds the noise. Distributed rounds are always secure and never open it.
   */
  readonly strategy: AggregationStrategy
  /** Turns a secure sum into the released aggregate: central noise, or the distributed decoding's last step. */
  readonly finishSum: (sum: AggregateResult) => Promise<AggregateResult>
  /** Distributed mode: how secure aggregation must treat the groups' sums; null in central mode. */
  readonly distributed: DistributedSum | null
  /** What participants are told. */
  readonly message: RoundPrivacyPlan
}

/** What the ledger's parameters need from a round's noise plan. */
interface NoiseSummary {
  readonly clipNorm: number
  readonly samplingRate: number
  readonly effectiveNoiseMultiplier: number
}

/** What a published round writes. */
export interface ConcludedPrivacy {
  /** The round record's privacy part, with the clipping outcome. */
  readonly record: RoundPrivacyRecord
  readonly commit: PrivacyCommit
}

export class ModelPrivacy {
  readonly #o: ModelPrivacyOptions
  readonly #accountant: RdpAccountant
  #clipNorm: number
  /** The clip norm in the stored state (kept as is while adaptive clipping is off). */
  #storedClipNorm: number | null
  #refusal: PrivacyRefusal | null
  /** Distributed mode's plan: fixed for the model, since the clip norm does not move. */
  readonly #distributed: DistributedSum | null

  private constructor(options: ModelPrivacyOptions, accountant: RdpAccountant, storedClipNorm: number | null, refusal: PrivacyRefusal | null) {
    this.#o = options
    this.#distributed = options.privacy.distributed === null ? null : planDistributed(options.privacy, options.privacy.distributed, options.vectorLength)
    this.#accountant = accountant
    this.#storedClipNorm = storedClipNorm
    this.#clipNorm = options.privacy.adaptiveClipping !== null && storedClipNorm !== null ? storedClipNorm : options.privacy.clipNorm
    this.#refusal = refusal
  }

  /**
   * Replays the model's ledger into a fresh accountant and reads its state. With adaptive
   * clipping the stored clip norm continues where the last round left it; otherwise the
   * configured one applies.
   */
  static async open(options: ModelPrivacyOptions): Promise<ModelPrivacy> {
    const { store, model } = options
    const accountant = new RdpAccountant()
    for (const entry of await store.listLedger(model)) accountant.compose(entry.event, entry.count)
    const state = await store.getPrivacyState(model)
    return new ModelPrivacy(options, accountant, state?.clipNorm ?? null, state?.refusal ?? null)
  }

  /** q: the sampling rate the accountant uses (1 for uniform sampling: no amplification). */
  get samplingRate(): number {
    return this.#o.sampling.kind === 'poisson' ? this.#o.sampling.rate : 1
  }

  /** C of the next round. */
  get clipNorm(): number {
    return this.#clipNorm
  }

  /** ε spent so far at the budget's δ, and its order. */
  spent(): EpsilonAndOrder {
    return this.#accountant.epsilonAndOrder(this.#o.privacy.budget.delta)
  }

  /** DP rounds composed so far. */
  get rounds(): number {
    return this.#accountant.rounds
  }

  /**
   * Plans the next round at the current clip norm.
   *
   * @throws HearthError `HEARTH_ERR_PRIVACY_BUDGET_EXCEEDED` when publishing it would take ε
   *   past the budget: the round must not open.
   */
  plan(): PlannedPrivacy {
    const distributed = this.#distributed
    if (distributed === null) return this.#planCentral()
    const { privacy } = this.#o
    const { plan } = distributed
    const summary = { clipNorm: privacy.clipNorm, samplingRate: this.samplingRate, effectiveNoiseMultiplier: plan.effectiveNoiseMultiplier }
    const event = distributedDpEvent(plan, this.samplingRate)
    const denominator = privacy.expectedCohortSize
    return {
      clipNorm: privacy.clipNorm,
      event,
      record: this.#record(summary, event),
      strategy: this.#o.strategy,
      finishSum: async (sum) => finishDistributedSum(sum, denominator),
      distributed,
      message: { mode: 'distributed', clipNorm: privacy.clipNorm, mechanism: plan.mechanism, scale: plan.scale, localVariance: plan.localVariance },
    }
  }

  #planCentral(): PlannedPrivacy {
    const { privacy, vectorLength } = this.#o
    const noise = planCentralNoise({
      clipNorm: this.#clipNorm,
      deltaNoiseMultiplier: privacy.deltaNoiseMultiplier,
      countNoise: privacy.adaptiveClipping?.countNoise ?? null,
      vectorLength,
      samplingRate: this.samplingRate,
      gridBits: privacy.gridBits,
      quantizationStep: this.#quantizationStep(),
    })
    const strategy = new CentralDpStrategy(this.#o.strategy, {
      plan: noise,
      denominator: privacy.expectedCohortSize,
      ...(this.#o.random === undefined ? {} : { random: this.#o.random }),
    })
    return {
      clipNorm: noise.clipNorm,
      event: noise.event,
      record: this.#record(noise, noise.event),
      strategy,
      finishSum: (sum) => strategy.finishSum(sum),
      distributed: null,
      message: { mode: 'central', clipNorm: noise.clipNorm },
    }
  }

  /**
   * The round record's privacy part before aggregation.
   *
   * @throws HearthError `HEARTH_ERR_PRIVACY_BUDGET_EXCEEDED` past the budget.
   */
  #record(noise: NoiseSummary, event: PrivacyEvent): RoundPrivacyRecord {
    const { privacy, model } = this.#o
    const before = this.spent()
    let after: EpsilonAndOrder
    try {
      after = assertWithinBudget(this.#accountant, event, privacy.budget)
    } catch (error) {
      if (!(error instanceof HearthError)) throw error
      const { epsilon, order } = epsilonAfter(this.#accountant, event, 1, privacy.budget.delta)
      throw new HearthError(
        'HEARTH_ERR_PRIVACY_BUDGET_EXCEEDED',
        `model ${model}: one more round (q = ${noise.samplingRate}, effective noise multiplier ${noise.effectiveNoiseMultiplier.toPrecision(6)}) ` +
          `would take epsilon from ${before.epsilon.toPrecision(6)} to ${epsilon.toPrecision(6)} (order ${order}) at delta ${privacy.budget.delta}, ` +
          `above the budget of ${privacy.budget.epsilon} after ${this.#accountant.rounds} rounds; no round opens until the budget or the noise is raised`,
        { cause: error },
      )
    }
    return {
      ...this.#parameters(noise),
      event,
      epsilonBefore: before.epsilon,
      epsilonIfPublished: after.epsilon,
      clipping: null,
    }
  }

  /** The refusal on record, if the last attempt to open a round was refused. */
  get refusal(): PrivacyRefusal | null {
    return this.#refusal
  }

  /** Records durably that a round was refused before it opened, unless the same reason is on record. */
  async refuse(error: HearthError, at: number): Promise<void> {
    if (this.#refusal?.reason === error.message && this.#refusal.code === error.code) return
    const refusal: PrivacyRefusal = { code: error.code, reason: error.message, at }
    await this.#o.store.setPrivacyState({ model: this.#o.model, clipNorm: this.#storedClipNorm, refusal })
    this.#refusal = refusal
  }

  /** A round opened: a refusal on record no longer holds. */
  async opened(): Promise<void> {
    if (this.#refusal === null) return
    await this.#o.store.setPrivacyState({ model: this.#o.model, clipNorm: this.#storedClipNorm, refusal: null })
    this.#refusal = null
  }

  /**
   * The record, ledger entry and next state of `planned`'s round, which publishes `version`
   * after aggregating as `report` says. Changes nothing until {@link committed}.
   */
  conclude(planned: PlannedPrivacy, report: AggregatePrivacyReport, published: { roundId: number; version: number; recordedAt: number }): ConcludedPrivacy {
    const { privacy, model } = this.#o
    const clipping = this.#clipping(planned.clipNorm, report)
    const after = epsilonAfter(this.#accountant, planned.event, 1, privacy.budget.delta)
    const record: RoundPrivacyRecord = { ...planned.record, clipping }
    const { event: _event, epsilonBefore: _before, epsilonIfPublished: _after, clipping: _clipping, ...parameters } = planned.record
    const commit: PrivacyCommit = {
      entry: {
        ...parameters,
        model,
        roundId: published.roundId,
        version: published.version,
        recordedAt: published.recordedAt,
        event: planned.event,
        count: 1,
        rounds: this.#accountant.rounds + 1,
        epsilon: after.epsilon,
        order: after.order,
        clipping,
      },
      state: { model, clipNorm: privacy.adaptiveClipping === null ? this.#storedClipNorm : clipping.nextClipNorm, refusal: null },
    }
    return { record, commit }
  }

  /** `commit` is durable: charge its event and move to its clip norm. */
  committed(commit: PrivacyCommit): void {
    this.#accountant.compose(commit.entry.event, commit.entry.count)
    this.#clipNorm = commit.entry.clipping.nextClipNorm
    this.#storedClipNorm = commit.state.clipNorm
    this.#refusal = null
  }

  #clipping(clipNorm: number, report: AggregatePrivacyReport): ClippingOutcome {
    const adaptive = this.#o.privacy.adaptiveClipping
    const { uploads } = report
    if (this.#distributed !== null) {
      // The indicator sum carries the devices' noise, so only a noised estimate exists.
      if (report.unclippedFraction === null) throw new HearthError('HEARTH_ERR_ROUND_FAILED', 'the distributed sum carried no unclipped fraction')
      return { uploads, clippedCount: null, clippedFraction: 1 - report.unclippedFraction, noised: true, nextClipNorm: clipNorm }
    }
    if (adaptive === null) {
      if (report.clippedCount === null) throw new HearthError('HEARTH_ERR_ROUND_FAILED', 'the DP strategy did not count the clipped updates')
      return { uploads, clippedCount: report.clippedCount, clippedFraction: report.clippedCount / uploads, noised: false, nextClipNorm: clipNorm }
    }
    const unclipped = report.unclippedFraction
    if (unclipped === null) throw new HearthError('HEARTH_ERR_ROUND_FAILED', 'the DP strategy did not estimate the unclipped fraction')
    return {
      uploads,
      clippedCount: null,
      clippedFraction: 1 - unclipped,
      noised: true,
      nextClipNorm: nextClipNorm(clipNorm, unclipped, adaptive.targetQuantile, adaptive.learningRate),
    }
  }

  /**
   * s under secure aggregation, for the largest group allowed: real groups are no larger, so
   * their step is no coarser and the plan stays an upper bound.
   */
  #quantizationStep(): number {
    const secagg = this.#o.secagg
    return secagg === null || secagg === undefined ? 0 : quantizationStep(secureQuantization(secagg, secagg.maxGroupSize, this.#clipNorm))
  }

  #parameters(noise: NoiseSummary): PrivacyParameters {
    const { privacy, sampling } = this.#o
    const adaptive = privacy.adaptiveClipping
    const secure = this.#o.secagg !== null && this.#o.secagg !== undefined
    return {
      mode: privacy.mode,
      trustAssumption: secure && privacy.mode === 'central' ? SECURE_CENTRAL_TRUST : TRUST_ASSUMPTIONS[privacy.mode],
      sampling: sampling.kind,
      samplingRate: noise.samplingRate,
      clipNorm: noise.clipNorm,
      noiseMultiplier: privacy.noiseMultiplier,
      effectiveNoiseMultiplier: noise.effectiveNoiseMultiplier,
      denominator: privacy.expectedCohortSize,
      adaptiveClipping: adaptive === null ? null : { ...adaptive, deltaNoiseMultiplier: privacy.deltaNoiseMultiplier },
      budget: privacy.budget,
    }
  }
}
