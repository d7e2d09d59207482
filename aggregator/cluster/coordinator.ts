/**
 * The coordinator of one model's cluster rounds: the replica holding the model's lease drives
 * each round through the tables, never touching a client or an individual update.
 *
 *   idle ──(≥ minCohort live sessions, cluster-wide)──▶ selection ──(maxCohort live, or the
 *   selection deadline)──▶ training: groups assigned to the replicas holding their clients ──(every
 *   group settled, or its replica died, or the round's deadline)──▶ publish the sum of the group
 *   sums, or abort with every group's reason
 *
 * The cohort is drawn with the CSPRNG from every live replica's session pseudonyms, as a single
 * aggregator draws from its pool (`rounds/selection.ts`). Groups never span replicas: each
 * replica's selected sessions are split into groups of at most `maxGroupSize`. A replica with
 * fewer selected sessions than a group needs (3) has them left out of the round, and the record's
 * reason says how many. Every group quantizes with one L (from the largest group of the round), so
 * the group sums add exactly; the coordinator dequantizes their total once and applies the server
 * optimizer, as `rounds/secure-aggregation.ts` does for the groups of one process.
 */
import type { FastifyBaseLogger } from 'fastify'
import { HearthError } from '../../protocol/errors.ts'
import { RoundOutcome, RoundStage } from '../../protocol/messages.ts'
import { combineGroupSums, splitIntoGroups } from '../../protocol/secagg/groups.ts'
import type { GroupOutcome } from '../../protocol/secagg/groups.ts'
import { deriveParameters } from '../../protocol/secagg/params.ts'
import { dequantizeSum } from '../../protocol/secagg/quantize.ts'
import { DEFAULT_STAGE_TIMEOUTS_MS } from '../../protocol/secagg/server.ts'
import type { AggregatorCounters } from '../counters.ts'
import type { ModelRegistry, ServedModel } from '../models/registry.ts'
import { versionRecord } from '../models/weights.ts'
import type { ResolvedRoundOptions } from '../options.ts'
import type { RandomInt } from '../random.ts'
import { roundConfig, SHUTDOWN_REASON } from '../rounds/engine.ts'
import type { ResolvedSecAgg } from '../rounds/secagg-options.ts'
import { secureQuantization } from '../rounds/secagg-options.ts'
import { sampleWithoutReplacement } from '../rounds/selection.ts'
import { freshRound } from '../store/store.ts'
import type { AggregatorStore, RoundRecord, SecAggGroupRecord } from '../store/store.ts'
import { serverStep } from '../rounds/server-step.ts'
import type { ClusterDb, GroupAssignment, GroupState } from './cluster-db.ts'

/** A group needs at least 3 clients (`protocol/secagg/groups.ts`). */
const MIN_GROUP = 3

export interface CoordinatorOptions {
  readonly replica: string
  readonly db: ClusterDb
  readonly model: ServedModel
  readonly rounds: ResolvedRoundOptions
  readonly secagg: ResolvedSecAgg
  readonly store: AggregatorStore
  readonly registry: ModelRegistry
  readonly counters: AggregatorCounters
  readonly log: FastifyBaseLogger
  readonly random: RandomInt
  readonly now: () => number
  /** A replica whose heartbeat is older than this is taken for dead. */
  readonly replicaTimeoutMs: number
  /** Told of each round's final record (the audit log). */
  readonly onEnd?: (record: RoundRecord) => void
}

interface CoordinatedRound {
  record: RoundRecord
  readonly selectionDeadline: number
  /** When the coordinator stops waiting for group sums. */
  groupsDeadline: number
  maxSummands: number
  /** Sessions selected but left out (their replica had too few for a group). */
  leftOut: number
}

/** The reason recorded for a round whose coordinator lost its lease. */
export function leaseLostReason(successor: string): string {
  return `HEARTH_ERR_REPLICA_LOST: the replica coordinating this round stopped; replica ${successor} took over its lease`
}

export class RoundCoordinator {
  readonly #o: CoordinatorOptions
  #round: CoordinatedRound | undefined
  #pausedUntil = 0
  #closed = false
  /** Every step runs after the previous one, so closing never races a publish. */
  #chain: Promise<void> = Promise.resolve()

  constructor(options: CoordinatorOptions) {
    this.#o = options
  }

  /** The round this coordinator drives, if any: its latest record. */
  get current(): RoundRecord | undefined {
    return this.#round?.record
  }

  /**
   * Called once this replica holds the model's lease: every unfinished round of the model had a
   * coordinator that is gone (the lease was free), so it is aborted, with the reason on record.
   */
  takeOver(): Promise<void> {
    return this.#serially(() => this.#takeOver())
  }

  /** One step: opens, selects or concludes, as the tables say. */
  tick(): Promise<void> {
    return this.#serially(() => this.#tick())
  }

  /** Steps down: a round in flight aborts (its groups on other replicas are told through the table). */
  close(): Promise<void> {
    return this.#serially(async () => {
      this.#closed = true
      const round = this.#round
      if (round !== undefined) await this.#abort(round, SHUTDOWN_REASON)
    })
  }

  #serially(step: () => Promise<void>): Promise<void> {
    const run = this.#chain.then(step)
    this.#chain = run.catch(() => {})
    return run
  }

  async #takeOver(): Promise<void> {
    if (this.#closed) return
    const { store, model, now, log } = this.#o
    // A round of this replica's own from before it lost the lease is among them.
    this.#round = undefined
    const recent = await store.listRounds({ model: model.name, limit: 100 })
    for (const stale of recent.filter((r) => r.outcome === null)) {
      const record: RoundRecord = { ...stale, stage: RoundStage.Done, outcome: RoundOutcome.Aborted, reason: leaseLostReason(this.#o.replica), closedAt: now() }
      await store.updateRound(record)
      log.warn({ roundId: record.id }, 'aborted a round whose coordinator is gone')
      await this.#ended(record)
    }
  }

  async #tick(): Promise<void> {
    if (this.#closed) return
    const round = this.#round
    if (round === undefined) await this.#maybeOpen()
    else if (round.record.stage === RoundStage.Selection) await this.#maybeSelect(round)
    else if (round.record.stage === RoundStage.Training) await this.#maybeConclude(round)
  }

  #since(): number {
    return this.#o.now() - this.#o.replicaTimeoutMs
  }

  async #maybeOpen(): Promise<void> {
    const { db, model, rounds, registry, store, now, log } = this.#o
    if (now() < this.#pausedUntil) return
    if ((await db.countLiveSessions(model.name, this.#since())) < rounds.minCohort) return
    // Another replica may have published (a rollback) since this one last looked.
    await registry.refresh(model.name)
    const createdAt = now()
    const record = await store.createRound(
      freshRound({ model: model.name, baseVersion: registry.latest(model.name).version, stage: RoundStage.Selection, config: roundConfig(rounds), createdAt }),
    )
    await db.createRound(record.id, model.name, this.#o.replica)
    this.#round = { record, selectionDeadline: createdAt + rounds.selectionTimeoutMs, groupsDeadline: Number.POSITIVE_INFINITY, maxSummands: 0, leftOut: 0 }
    this.#o.counters.increment('roundsStarted')
    log.info({ roundId: record.id, baseVersion: record.baseVersion }, 'cluster round open for selection')
  }

  async #maybeSelect(round: CoordinatedRound): Promise<void> {
    const { db, model, rounds, secagg, store, now, log, random } = this.#o
    const live = await db.liveSessions(model.name, this.#since())
    if (now() < round.selectionDeadline && live.length < rounds.maxCohort) return
    const cohort = sampleWithoutReplacement(live, Math.min(rounds.maxCohort, live.length), random)
    const byReplica = new Map<string, string[]>()
    for (const { replica, session } of cohort) byReplica.set(replica, [...(byReplica.get(replica) ?? []), session])
    const groups: GroupAssignment[] = []
    for (const [replica, sessions] of byReplica) {
      if (sessions.length < MIN_GROUP) {
        round.leftOut += sessions.length
        continue
      }
      for (const members of splitIntoGroups(sessions, secagg.maxGroupSize)) groups.push({ roundId: round.record.id, groupId: groups.length, replica, sessions: members })
    }
    const participants = groups.reduce((n, g) => n + g.sessions.length, 0)
    const at = now()
    round.record = { ...round.record, eligible: live.length }
    if (participants < rounds.minCohort) {
      await this.#abort(round, `only ${participants} of ${live.length} waiting sessions could form secure-aggregation groups (${round.leftOut} selected on replicas with fewer than ${MIN_GROUP}); minCohort is ${rounds.minCohort}`)
      return
    }
    round.maxSummands = Math.max(...groups.map((g) => g.sessions.length))
    await db.assign(round.record.id, round.maxSummands, groups)
    round.groupsDeadline = at + roundSpan(secagg) + this.#o.replicaTimeoutMs
    round.record = {
      ...round.record,
      stage: RoundStage.Training,
      selectedAt: at,
      uploadDeadline: at + rounds.uploadTimeoutMs,
      participants,
      secagg: this.#secaggRecord(round, groups.map((g) => pendingGroup(g, secagg))),
    }
    // Write-ahead, as a single aggregator does: the cohort is on record before a replica sends a plan.
    await store.updateRound(round.record)
    this.#o.counters.stage(RoundStage.Selection, at - round.record.createdAt)
    log.info({ roundId: round.record.id, participants, groups: groups.length, replicas: byReplica.size, leftOut: round.leftOut }, 'cluster cohort assigned')
    await db.notify('assigned', model.name)
  }

  async #maybeConclude(round: CoordinatedRound): Promise<void> {
    const { db, now } = this.#o
    const id = round.record.id
    let groups = await db.groups(id, this.#since())
    const late = now() > round.groupsDeadline
    const lost = groups.filter((g) => !g.settled && (late || !g.replicaAlive))
    if (lost.length > 0) {
      await db.loseGroups(
        id,
        lost.map((g) => ({
          groupId: g.groupId,
          record: {
            ...pendingGroup(g, this.#o.secagg),
            state: 'aborted',
            reason: g.replicaAlive
              ? `HEARTH_ERR_ROUND_ABORTED: replica ${g.replica} did not report the group by the round's deadline`
              : `HEARTH_ERR_REPLICA_LOST: replica ${g.replica} stopped`,
          },
        })),
      )
      groups = await db.groups(id, this.#since())
    }
    const records = groups.map((g) => g.record ?? pendingGroup(g, this.#o.secagg))
    round.record = { ...round.record, secagg: this.#secaggRecord(round, records), uploadsAccepted: sum(records.map((r) => r.masked ?? 0)) }
    if (!groups.every((g) => g.settled)) {
      await this.#o.store.updateRound(round.record)
      return
    }
    await this.#conclude(round, groups)
  }

  async #conclude(round: CoordinatedRound, groups: readonly GroupState[]): Promise<void> {
    const { model, rounds, secagg, registry, log, now } = this.#o
    const outcomes: GroupOutcome[] = groups.map((g) =>
      g.sum !== null && g.survivors > 0 ? { groupId: g.groupId, clients: g.sessions.length, sum: g.sum, survivors: g.survivors } : { groupId: g.groupId, clients: g.sessions.length },
    )
    const combined = combineGroupSums(outcomes, model.vectorLength)
    const dropped = round.record.participants - combined.contributors
    round.record = { ...round.record, dropped: Math.max(0, dropped) }
    if (combined.contributors < rounds.minCohort) {
      const reasons = (round.record.secagg?.groups ?? []).map((g) => `group ${g.groupId} (${g.clients} clients, t = ${g.threshold}): ${g.reason ?? `${g.survivors} survivors`}`)
      await this.#abort(round, `secure aggregation unmasked ${combined.contributors} inputs; minCohort is ${rounds.minCohort}. ${reasons.join('; ')}`)
      return
    }
    try {
      const quantization = secureQuantization(secagg, round.maxSummands, null)
      const aggregate = { sum: dequantizeSum(combined.sum, combined.contributors, quantization), count: combined.contributors }
      await registry.refresh(model.name)
      const base = registry.latest(model.name)
      if (base.version !== round.record.baseVersion) {
        throw new HearthError('HEARTH_ERR_ROUND_FAILED', `base version ${round.record.baseVersion} is no longer the latest (${base.version})`)
      }
      const { weights, state: optimizerState } = await serverStep(rounds.optimizer, this.#o.store, this.#o.model.spec, base, aggregate)
      const bad = weights.findIndex((x) => !Number.isFinite(x))
      if (bad >= 0) throw new HearthError('HEARTH_ERR_ROUND_FAILED', `the new weights overflow float32 at element ${bad}`)
      const closedAt = now()
      const version = versionRecord(model.name, base.version + 1, weights, round.record.id, closedAt)
      const record: RoundRecord = {
        ...round.record,
        stage: RoundStage.Done,
        outcome: RoundOutcome.Published,
        reason: 'secure aggregation ended in every group',
        closedAt,
        publishedVersion: version.version,
      }
      await registry.publish(record, version, undefined, optimizerState)
      round.record = record
    } catch (error) {
      log.error({ err: error, roundId: round.record.id }, 'cluster round failed to publish')
      await this.#abort(round, `aggregation failed: ${error instanceof Error ? error.message : String(error)}`)
      return
    }
    this.#o.counters.increment('roundsPublished')
    log.info({ roundId: round.record.id, version: round.record.publishedVersion, contributors: combined.contributors }, 'cluster round published')
    await this.#finish(round)
    await this.#o.db.notify('published', model.name)
  }

  async #abort(round: CoordinatedRound, reason: string): Promise<void> {
    round.record = { ...round.record, stage: RoundStage.Done, outcome: RoundOutcome.Aborted, reason, closedAt: this.#o.now() }
    this.#o.counters.increment('roundsAborted')
    this.#o.log.warn({ roundId: round.record.id, reason }, 'cluster round aborted')
    try {
      await this.#o.store.updateRound(round.record)
    } catch (error) {
      this.#o.log.error({ err: error, roundId: round.record.id }, 'could not record the aborted round')
    }
    await this.#finish(round)
  }

  async #finish(round: CoordinatedRound): Promise<void> {
    if (round.record.selectedAt !== null && round.record.closedAt !== null) this.#o.counters.stage(RoundStage.Training, round.record.closedAt - round.record.selectedAt)
    this.#round = undefined
    this.#pausedUntil = this.#o.now() + this.#o.rounds.pauseMs
    await this.#ended(round.record)
  }

  /** Tells the audit log and the replicas; drops the group sums and pseudonyms. */
  async #ended(record: RoundRecord): Promise<void> {
    this.#o.onEnd?.(record)
    try {
      await this.#o.db.wipe(record.id)
      await this.#o.db.notify('ended', record.model)
    } catch (error) {
      this.#o.log.error({ err: error, roundId: record.id }, 'could not clear the ended round from the cluster tables')
    }
  }

  #secaggRecord(round: CoordinatedRound, groups: readonly SecAggGroupRecord[]): RoundRecord['secagg'] {
    const s = this.#o.secagg
    const q = secureQuantization(s, Math.max(round.maxSummands, 1), null)
    return { variant: s.variant, clipNorm: q.clipNorm, modulusBits: q.modulusBits, maxSummands: q.maxSummands, expectedDropout: s.expectedDropout, corruptFraction: s.corruptFraction, groups }
  }
}

/** How a group looks before its replica reports: its size and derived k and t, nothing run yet. */
function pendingGroup(g: GroupAssignment, s: ResolvedSecAgg): SecAggGroupRecord {
  const p = deriveParameters(s.variant, { groupSize: g.sessions.length, expectedDropout: s.expectedDropout, corruptFraction: s.corruptFraction })
  return { groupId: g.groupId, clients: g.sessions.length, degree: p.degree, threshold: p.threshold, state: 'assigned', advertised: null, shared: null, masked: null, unmasked: null, survivors: 0, contributed: false, reason: null }
}

/** The longest a group can take: every stage to its deadline. */
function roundSpan(s: ResolvedSecAgg): number {
  const stages = { ...DEFAULT_STAGE_TIMEOUTS_MS, ...s.stageTimeoutsMs }
  return sum(Object.entries(stages).map(([stage, ms]) => (stage === 'consistency-check' && !s.consistencyCheck ? 0 : ms)))
}

function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0)
}
