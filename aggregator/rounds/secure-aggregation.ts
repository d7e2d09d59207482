/**
 * Secure aggregation of one round (DESIGN.md §4): the cohort is split into groups of bounded
 * size (`protocol/secagg/groups.ts`), each group runs the protocol of Bonawitz et al. (CCS 2017),
 * or SecAgg+ (Bell et al., CCS 2020), with k and t derived from its size, and the sums of the
 * groups that completed are added and dequantized. The aggregator never holds an individual
 * update: only each group's running sum of masked inputs, unmasked as a whole. A group that fell
 * below its threshold contributes nothing; the round record says how many clients each group had.
 *
 * Every group quantizes with the same level count L = ⌊(2^b − 1) / n_max⌋ (n_max the largest
 * group), so the integer group sums add exactly and one `dequantizeSum` turns the total back into
 * the sum of the clipped deltas.
 *
 * With distributed DP the inputs are noised integer shares instead (`privacy/distributed-dp.ts`):
 * any value of Z_{2^b}, each group sum read as signed on its own and divided by the plan's scale,
 * and a group sum holding fewer devices than the accountant assumed stops the round.
 */
import type { FastifyBaseLogger } from 'fastify'
import { HearthError } from '../../protocol/errors.ts'
import { AggregationMode } from '../../protocol/messages.ts'
import type { SecureAggregationPlan } from '../../protocol/messages.ts'
import { combineGroupSums, splitIntoGroups } from '../../protocol/secagg/groups.ts'
import type { GroupOutcome } from '../../protocol/secagg/groups.ts'
import { dequantizeSum, inputLimit } from '../../protocol/secagg/quantize.ts'
import type { QuantizationParams } from '../../protocol/secagg/quantize.ts'
import { secureQuantization } from './secagg-options.ts'
import { configureGroup } from '../../protocol/secagg/setup.ts'
import { decodeNoisedGroups, noiseShortfall } from '../privacy/distributed-dp.ts'
import type { DistributedSum } from '../privacy/distributed-dp.ts'
import type { RoundSecAggRecord } from '../store/store.ts'
import { GroupRun } from './secagg-group.ts'
import type { ResolvedSecAgg } from './secagg-options.ts'
import type { ClientSession } from './session.ts'
import type { AggregateResult } from './strategy.ts'

export interface SecureAggregationOptions {
  readonly roundId: number
  /** Elements of each input: the federated vector, plus the clipping indicator with central DP. */
  readonly vectorLength: number
  readonly cohort: readonly ClientSession[]
  /**
   * Groups formed elsewhere, by id, instead of splitting `cohort` here: in a cluster the
   * coordinator forms every group of the round and each replica runs its own (`aggregator/cluster`).
   */
  readonly groups?: readonly { readonly groupId: number; readonly sessions: readonly ClientSession[] }[]
  /** The largest group of the whole round when other replicas run some of its groups (one L for all). */
  readonly maxSummands?: number
  readonly settings: ResolvedSecAgg
  /** C of the round with central DP (the quantization then covers the indicator too), else null. */
  readonly privateClipNorm: number | null
  /** Applied to the unmasked sum: central DP's noise, or distributed DP's denominator. */
  readonly finish?: (sum: AggregateResult) => Promise<AggregateResult>
  /** Distributed DP: the inputs are noised shares (see the module comment). */
  readonly distributed?: DistributedSum
  readonly now: () => number
  readonly log: FastifyBaseLogger
  /** Called once, when every group has completed or aborted. */
  readonly onSettled: () => void
}

interface Membership {
  readonly group: GroupRun
  readonly index: number
}

export class SecureAggregation {
  readonly #o: SecureAggregationOptions
  readonly #groups: readonly GroupRun[]
  readonly #members = new Map<ClientSession, Membership>()
  readonly #quantization: QuantizationParams
  #announced = false

  /** Forms the groups; throws `HEARTH_ERR_INVALID_CONFIG` when a group admits no parameters. */
  constructor(options: SecureAggregationOptions) {
    this.#o = options
    const s = options.settings
    const split = options.groups ?? splitIntoGroups(options.cohort, s.maxGroupSize).map((sessions, groupId) => ({ groupId, sessions }))
    const maxSummands = options.maxSummands ?? Math.max(...split.map((g) => g.sessions.length))
    this.#quantization = secureQuantization(s, maxSummands, options.privateClipNorm)
    // Noised shares take any residue; the plan's scale keeps their sum from wrapping.
    const maxInputValue = options.distributed === undefined ? inputLimit(s.modulusBits, maxSummands) : 2 ** s.modulusBits - 1
    this.#groups = split.map(({ groupId, sessions }) => {
      const config = configureGroup({
        roundId: options.roundId,
        groupId,
        mode: s.variant,
        groupSize: sessions.length,
        vectorLength: options.vectorLength,
        expectedDropout: s.expectedDropout,
        corruptFraction: s.corruptFraction,
        modulusBits: s.modulusBits,
        consistencyCheck: s.consistencyCheck,
        stageTimeoutsMs: s.stageTimeoutsMs,
      })
      const group = new GroupRun({
        // One L for every group (see the module comment); it fits each group since n <= n_max.
        config: { ...config, maxInputValue, modularInputs: options.distributed !== undefined },
        sessions,
        now: options.now,
        log: options.log.child({ roundId: options.roundId, groupId }),
        onSettled: () => this.#groupSettled(),
      })
      sessions.forEach((session, i) => this.#members.set(session, { group, index: i + 1 }))
      return group
    })
  }

  /** What the round plan tells every participant. */
  plan(): SecureAggregationPlan {
    const { clipNorm, modulusBits, maxSummands } = this.#quantization
    return { mode: AggregationMode.SecAgg, variant: this.#o.settings.variant, clipNorm, modulusBits, maxSummands, groups: this.#groups.length }
  }

  /** Opens AdvertiseKeys in every group (after the round plans went out). */
  start(): void {
    for (const group of this.#groups) group.start()
  }

  get settled(): boolean {
    return this.#groups.every((g) => g.settled)
  }

  /** A secure-aggregation control message from `session`; throws the `HearthError` to answer with. */
  receive(session: ClientSession, message: unknown): void {
    const { group, index } = this.#member(session)
    group.receive(index, message)
  }

  /** `session`'s masked input (the whole `MaskedUpdate` frame); throws the `HearthError` to answer with. */
  receiveMaskedInput(session: ClientSession, frame: Uint8Array): void {
    const { group, index } = this.#member(session)
    group.receiveMaskedInput(index, frame)
  }

  disconnected(session: ClientSession): void {
    const member = this.#members.get(session)
    member?.group.disconnected(member.index)
  }

  /** Ends every group still running, without a sum. */
  stop(reason: string): void {
    for (const group of this.#groups) group.stop(reason)
  }

  /** How each group ended, with the sum of each that completed (for a cluster's coordinator). */
  outcomes(): GroupOutcome[] {
    return this.#groups.map((g) => g.outcome())
  }

  /** Clients whose inputs are in the sum of a completed group. */
  contributors(): number {
    let count = 0
    for (const group of this.#groups) count += group.outcome().survivors ?? 0
    return count
  }

  /**
   * Why the round cannot publish, or undefined: fewer than `minCohort` inputs were unmasked, or
   * with distributed DP a group sum holds too few noise shares.
   */
  shortfall(minCohort: number): string | undefined {
    const contributors = this.contributors()
    if (contributors >= minCohort) {
      const distributed = this.#o.distributed
      const short = distributed === undefined ? undefined : noiseShortfall(this.#groups.map((g) => g.outcome()), distributed.minSurvivors)
      return short === undefined ? undefined : `${short.code}: ${short.message}`
    }
    const groups = this.record().groups.map((g) => `group ${g.groupId} (${g.clients} clients, t = ${g.threshold}): ${g.reason ?? `${g.survivors} survivors`}`)
    return `secure aggregation unmasked ${contributors} inputs; minCohort is ${minCohort}. ${groups.join('; ')}`
  }

  /**
   * Σ of the survivors' clipped deltas, dequantized from the sum of the group sums, with the
   * number of inputs in it (what FedAvg divides by) — or, with central DP, that after `finish`.
   */
  async result(): Promise<AggregateResult> {
    const outcomes = this.#groups.map((g) => g.outcome())
    const distributed = this.#o.distributed
    let sum: AggregateResult
    if (distributed === undefined) {
      const combined = combineGroupSums(outcomes, this.#o.vectorLength)
      sum = { sum: dequantizeSum(combined.sum, combined.contributors, this.#quantization), count: combined.contributors }
    } else {
      const short = noiseShortfall(outcomes, distributed.minSurvivors)
      if (short !== undefined) throw short
      const decoded = decodeNoisedGroups(outcomes, this.#o.vectorLength, distributed.plan)
      sum = { sum: decoded.sum, count: decoded.contributors }
    }
    if (sum.count === 0) throw new HearthError('HEARTH_ERR_SECAGG_THRESHOLD', 'no group completed secure aggregation')
    return this.#o.finish === undefined ? sum : this.#o.finish(sum)
  }

  record(): RoundSecAggRecord {
    const s = this.#o.settings
    return {
      variant: s.variant,
      clipNorm: this.#quantization.clipNorm,
      modulusBits: this.#quantization.modulusBits,
      maxSummands: this.#quantization.maxSummands,
      expectedDropout: s.expectedDropout,
      corruptFraction: s.corruptFraction,
      groups: this.#groups.map((g) => g.record()),
    }
  }

  #member(session: ClientSession): Membership {
    const member = this.#members.get(session)
    if (member === undefined) throw new HearthError('HEARTH_ERR_NOT_SELECTED', `this session is not in a secure-aggregation group of round ${this.#o.roundId}`)
    return member
  }

  #groupSettled(): void {
    if (this.#announced || !this.settled) return
    this.#announced = true
    this.#o.onSettled()
  }
}
