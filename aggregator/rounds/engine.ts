/**
 * The round engine of one model: its pool of checked-in sessions and the rounds it runs, one at
 * a time.
 *
 *   idle ──(≥ minCohort waiting)──▶ selection ──(maxCohort waiting, or selection deadline)──▶
 *   training ──(all participants uploaded or left, or upload deadline)──▶ aggregation ──▶ done
 *   ──(pause)──▶ idle
 *
 * Every stage has a deadline. A round publishes base + mean of the accepted deltas when at least
 * `minCohort` uploads were accepted; otherwise it aborts with a reason, as early as the shortfall
 * is certain. Round records are written through one serial queue so the store always ends with
 * a round's latest state.
 *
 * Rounds come from two places. With `rounds.schedule` `auto` the engine opens one whenever
 * `minCohort` sessions wait and no pause holds. Operators also create rounds through the admin
 * API (`plugins/admin-rounds.ts`), each with its own cohort, deadlines and training settings
 * (`config/round-request.ts`); a started one opens as soon as no round runs, before any automatic
 * round and without waiting for the pause, and its selection deadline counts from that moment.
 * In `manual` mode only those run. A running round can be stopped: it aborts with the operator's
 * reason, publishes nothing and charges nothing.
 *
 * With differential privacy, a round is planned before selection opens (`ModelPrivacy.plan`): if
 * publishing it would exceed the model's budget no round opens at all — the refusal is recorded
 * and the engine opens no more rounds in this process (the spent ε can only grow). A published
 * round's ledger entry is written in the transaction that publishes its version.
 */
import type { FastifyBaseLogger } from 'fastify'
import { RandomBits } from '../../protocol/dp/sampling/random.ts'
import { HearthError } from '../../protocol/errors.ts'
import type { Frame } from '../../protocol/frames.ts'
import type { SecAggClientMessage } from '../../protocol/secagg/messages.ts'
import { RoundOutcome, RoundStage } from '../../protocol/messages.ts'
import type { AggregatorCounters } from '../counters.ts'
import type { ModelRegistry, ServedModel } from '../models/registry.ts'
import { versionRecord } from '../models/weights.ts'
import type { ResolvedRoundOptions } from '../options.ts'
import type { ModelPrivacy, PlannedPrivacy } from '../privacy/model-privacy.ts'
import type { RandomInt } from '../random.ts'
import { freshRound } from '../store/store.ts'
import type { AggregatorStore, PrivacyCommit, RoundConfig, RoundRecord } from '../store/store.ts'
import { Round } from './round.ts'
import type { UploadsClosedBy } from './round.ts'
import { SecureAggregation } from './secure-aggregation.ts'
import { samplePoisson, sampleWithoutReplacement } from './selection.ts'
import { serverStep } from './server-step.ts'
import type { ClientSession } from './session.ts'
import type { AggregationStrategy } from './strategy.ts'

export interface RoundEngineOptions {
  readonly model: ServedModel
  readonly rounds: ResolvedRoundOptions
  readonly store: AggregatorStore
  readonly registry: ModelRegistry
  readonly counters: AggregatorCounters
  readonly log: FastifyBaseLogger
  readonly random: RandomInt
  /** Fair bits for Poisson sampling. Default: the platform CSPRNG. */
  readonly bits?: RandomBits
  /** The model's privacy bookkeeping, when differential privacy is on. */
  readonly privacy?: ModelPrivacy
  readonly now: () => number
  /** Told of each new round as soon as it has an id, so uploads can be routed to it. */
  readonly onRound: (round: Round) => void
  /** Told of each round's final record once it has published or aborted (the audit log). */
  readonly onEnd?: (record: RoundRecord) => void
}

/** Least time between two progress writes of a round during its uploads (`persistProgress`). */
const PROGRESS_WRITE_MS = 250

/** The reason recorded when the aggregator stops with a round in flight. */
export const SHUTDOWN_REASON = 'aggregator shutting down'

/** A round an operator created: its stored record (stage `created`) and what it runs with. */
export interface RequestedRound {
  readonly record: RoundRecord
  /** Its own strategy (plain aggregation without DP); otherwise the engine's. */
  readonly strategy?: AggregationStrategy
}

/** When a started round opens: `now`, or once the rounds ahead of it (`ahead`) have ended. */
export interface RoundStart {
  readonly begins: 'now' | 'after-current-round'
  readonly ahead: number
}

export class RoundEngine {
  readonly #o: RoundEngineOptions
  readonly #config: RoundConfig
  readonly #pool = new Set<ClientSession>()
  readonly #ticker: NodeJS.Timeout
  #timer: NodeJS.Timeout | undefined
  #current: Round | undefined
  #opening: Promise<void> | undefined
  #concluding: Promise<void> | undefined
  #pausedUntil = 0
  #closing = false
  #writes: Promise<void> = Promise.resolve()
  readonly #dirty = new Set<Round>()
  #flushQueued = false
  /** When `persistProgress` last wrote (the engine's clock). */
  #progressWrittenAt = -Infinity
  readonly #bits: RandomBits
  /** The privacy plan of the round in flight, when DP is on. */
  #planned: { readonly round: Round; readonly privacy: PlannedPrivacy } | undefined
  /** Why no round may open any more (the privacy budget), once refused. */
  #refused: HearthError | undefined
  /** Operator-created rounds not started yet, by id. */
  readonly #created = new Map<number, RequestedRound>()
  /** Started operator rounds waiting to open, first to open first. */
  readonly #queue: RequestedRound[] = []
  /** The operator round `#opening` is opening, if any. */
  #openingRequest: RequestedRound | undefined

  constructor(options: RoundEngineOptions) {
    this.#o = options
    const r = options.rounds
    this.#config = roundConfig(r)
    this.#bits = options.bits ?? new RandomBits()
    // The interval is a safety net; check-ins and the end of each pause poke the engine directly.
    this.#ticker = setInterval(() => this.poke(), r.checkIntervalMs)
    this.#ticker.unref()
  }

  /** Sessions checked in for this model. */
  get waiting(): number {
    return this.#pool.size
  }

  /** The round in flight, if any. */
  get current(): Round | undefined {
    return this.#current
  }

  /** Why this engine opens no more rounds, if the privacy budget refused one. */
  get refused(): HearthError | undefined {
    return this.#refused
  }

  /** Adds a checked-in session to the pool. */
  join(session: ClientSession): void {
    if (this.#closing) return
    this.#pool.add(session)
    const round = this.#current
    if (round?.stage === RoundStage.Selection && this.#pool.size >= round.config.maxCohort) this.#select(round)
    else this.poke()
  }

  /** Takes charge of an operator-created round, which waits for {@link start}. */
  add(request: RequestedRound): void {
    this.#created.set(request.record.id, request)
  }

  /** True when round `id` is this engine's and has not ended: created, started, opening or in flight. */
  holds(id: number): boolean {
    return this.#created.has(id) || this.#queue.some((r) => r.record.id === id) || this.#openingRequest?.record.id === id || this.#current?.id === id
  }

  /**
   * Starts created round `id`: it opens now if no round runs, else as soon as the rounds ahead
   * of it end. Throws `HEARTH_ERR_ROUND_STATE` when `id` is not a created round of this engine.
   */
  start(id: number): RoundStart {
    const request = this.#created.get(id)
    if (request === undefined) throw new HearthError('HEARTH_ERR_ROUND_STATE', `round ${id} is not waiting to start`)
    if (this.#refused !== undefined) throw new HearthError('HEARTH_ERR_PRIVACY_BUDGET_EXCEEDED', this.#refused.message)
    this.#created.delete(id)
    this.#queue.push(request)
    const ahead = this.#queue.length - 1 + (this.#current !== undefined || this.#opening !== undefined ? 1 : 0)
    this.poke()
    return { begins: ahead === 0 ? 'now' : 'after-current-round', ahead }
  }

  /**
   * Stops round `id` on behalf of `operator` (who, and why): a created or queued round is
   * cancelled, a round in selection or training aborts (participants are told; nothing is
   * published or charged). Resolves with the final record once it is written. Throws
   * `HEARTH_ERR_ROUND_STATE` for a round already aggregating (it is publishing) and for ids this
   * engine does not hold.
   */
  async stop(id: number, operator: string): Promise<RoundRecord> {
    const waiting = this.#created.get(id) ?? this.#queue.find((r) => r.record.id === id)
    if (waiting !== undefined) {
      this.#created.delete(id)
      const queued = this.#queue.indexOf(waiting)
      if (queued >= 0) this.#queue.splice(queued, 1)
      return this.#cancel(waiting, `cancelled by ${operator}`)
    }
    await this.#opening
    const round = this.#current
    if (round?.id !== id) throw new HearthError('HEARTH_ERR_ROUND_STATE', `round ${id} is not running`)
    if (round.stage !== RoundStage.Selection && round.stage !== RoundStage.Training) {
      throw new HearthError('HEARTH_ERR_ROUND_STATE', `round ${id} is ${round.stage}: too late to stop it`)
    }
    this.#clearTimer()
    const aborted = this.#abort(round, `stopped by ${operator}`)
    this.#concluding = aborted
    await aborted
    return round.toRecord()
  }

  /**
   * Removes a session that disconnected; a participant that had not uploaded counts as dropped.
   * In a secure round its group stops waiting for it; the groups decide when the round ends.
   */
  leave(session: ClientSession): void {
    if (!this.#pool.delete(session)) return
    const round = session.round
    if (round === undefined || round !== this.#current) return
    round.secure?.disconnected(session)
    if (!round.drop(session)) return
    this.#o.counters.increment('participantsDropped')
    this.persistProgress(round)
    if (round.secure !== undefined) return
    if (round.uploaded.size + round.pending() < round.config.minCohort) this.#closeUploads(round, 'dropouts')
    else if (round.pending() === 0) this.#closeUploads(round, 'complete')
  }

  /**
   * Opens the first started operator round if no round runs; otherwise, in `auto` mode, a round
   * of the engine's own if no pause holds and at least `minCohort` sessions wait.
   */
  poke(): void {
    if (this.#closing || this.#refused !== undefined || this.#current !== undefined || this.#opening !== undefined) return
    const request = this.#queue.shift()
    if (request === undefined) {
      if (this.#o.rounds.schedule === 'manual') return
      if (this.#o.now() < this.#pausedUntil || this.#pool.size < this.#config.minCohort) return
    }
    this.#openingRequest = request
    this.#opening = this.#open(request).finally(() => {
      this.#opening = undefined
      this.#openingRequest = undefined
      // A round started while this one failed to open still waits for its turn.
      if (this.#current === undefined && this.#queue.length > 0) this.poke()
    })
  }

  /**
   * Accepts `frame` as `session`'s upload to `round` and acknowledges it, or throws the
   * `HearthError` to answer with; a rejection leaves the round as it was.
   */
  upload(round: Round, session: ClientSession, frame: Frame, bytes: Uint8Array): void {
    round.accept(session, frame, this.#o.now(), bytes)
    this.#o.counters.increment('uploadsAccepted')
    session.send({ type: 'upload-accepted', roundId: round.id })
    this.persistProgress(round)
    if (round.secure === undefined && round.pending() === 0) this.#closeUploads(round, 'complete')
  }

  /**
   * A secure-aggregation control message from `session`, for the round it takes part in; throws
   * the `HearthError` to answer with (the round is unchanged).
   */
  control(session: ClientSession, message: SecAggClientMessage): void {
    const round = session.round
    if (round === undefined || round !== this.#current) throw new HearthError('HEARTH_ERR_ROUND_CLOSED', `no round of this session takes ${message.type}`)
    const secure = round.secure
    if (secure === undefined || round.stage !== RoundStage.Training) {
      throw new HearthError('HEARTH_ERR_ROUND_CLOSED', `round ${round.id} takes no secure-aggregation message now`)
    }
    secure.receive(session, message)
    this.persistProgress(round)
  }

  /**
   * `persist`, at most once per `PROGRESS_WRITE_MS`, for the per-message progress of a round
   * (uploads, secure-aggregation messages, dropouts, rejections). Each message arrives in its own
   * turn of the event loop, so `persist` alone cannot coalesce them: with the store's fsync'd commits (SQLite
   * synchronous=FULL, ≈5 ms each on the benchmark machine) a round of 1,000 uploads blocked the
   * loop for ≈5 s (bench/RESULTS.md, "Load"). Nothing is lost: the live record is served from
   * memory, every stage change writes in full, and a round found unfinished at a restart is
   * aborted whatever its counts said.
   */
  persistProgress(round: Round): void {
    const now = this.#o.now()
    if (now - this.#progressWrittenAt < PROGRESS_WRITE_MS) return
    this.#progressWrittenAt = now
    this.persist(round)
  }

  /**
   * Schedules a write of `round`'s current record. Writes are coalesced and serialized, so a
   * burst of uploads costs one write and an older state never lands after a newer one.
   */
  persist(round: Round): void {
    this.#dirty.add(round)
    if (this.#flushQueued) return
    this.#flushQueued = true
    void this.#enqueue(async () => {
      this.#flushQueued = false
      const rounds = [...this.#dirty]
      this.#dirty.clear()
      for (const r of rounds) {
        try {
          await this.#o.store.updateRound(r.toRecord())
        } catch (error) {
          this.#o.log.error({ err: error, roundId: r.id }, 'could not save the round record')
        }
      }
    })
  }

  /**
   * Stops the engine: a round still in selection aborts; a round taking uploads closes them now
   * and publishes if it already holds `minCohort` accepted uploads (nothing accepted is thrown
   * away), otherwise it aborts. Participants are told either way. Resolves once every record
   * is written.
   */
  async close(): Promise<void> {
    this.#closing = true
    clearInterval(this.#ticker)
    this.#clearTimer()
    await this.#opening
    const round = this.#current
    if (round?.stage === RoundStage.Selection) await this.#abort(round, SHUTDOWN_REASON)
    else if (round?.stage === RoundStage.Training) this.#closeUploads(round, 'shutdown')
    await this.#concluding
    await this.#writes
    // Operator rounds that never opened end too, so none stays `created` on record.
    const waiting = [...this.#created.values(), ...this.#queue.splice(0)]
    this.#created.clear()
    for (const request of waiting) await this.#cancel(request, SHUTDOWN_REASON)
    this.#pool.clear()
  }

  /** Opens `request` (an operator round) or, without one, a round of the engine's own. */
  async #open(request?: RequestedRound): Promise<void> {
    const { model, registry, store, log, now } = this.#o
    let privacy: PlannedPrivacy | undefined
    try {
      privacy = this.#o.privacy?.plan()
    } catch (error) {
      await this.#refuse(error)
      // Once the budget refuses, no started round can open either.
      const refused = this.#refused === undefined ? [] : this.#queue.splice(0)
      const reason = `refused before opening: ${error instanceof Error ? error.message : String(error)}`
      for (const r of request === undefined ? refused : [request, ...refused]) await this.#cancel(r, reason)
      return
    }
    const createdAt = now()
    let round: Round
    try {
      const fields = freshRound({
        model: model.name,
        baseVersion: registry.latest(model.name).version,
        stage: RoundStage.Selection,
        config: request?.record.config ?? this.#config,
        createdAt,
        privacy: privacy?.record ?? null,
      })
      let record: RoundRecord
      if (request === undefined) record = await store.createRound(fields)
      else {
        record = { ...fields, id: request.record.id }
        await store.updateRound(record)
      }
      const strategy = privacy?.strategy ?? request?.strategy ?? this.#o.rounds.strategy
      round = new Round(record, model.vectorLength, strategy, privacy?.message ?? null)
    } catch (error) {
      log.error({ err: error, roundId: request?.record.id }, 'could not open a round')
      if (request !== undefined) await this.#cancel(request, `could not open: ${error instanceof Error ? error.message : String(error)}`)
      this.#pause()
      return
    }
    this.#planned = privacy === undefined ? undefined : { round, privacy }
    // A refusal on record (an earlier process's budget) no longer holds once a round opens.
    this.#o.privacy?.opened().catch((error: unknown) => log.error({ err: error }, 'could not clear the recorded refusal'))
    this.#current = round
    this.#o.onRound(round)
    this.#o.counters.increment('roundsStarted')
    log.info({ roundId: round.id, baseVersion: round.baseVersion, waiting: this.#pool.size }, 'round open for selection')
    if (this.#closing) return // close() aborts it
    this.#setTimer(round.config.selectionTimeoutMs, () => this.#select(round))
    if (this.#pool.size >= round.config.maxCohort) this.#select(round)
  }

  #select(round: Round): void {
    if (round !== this.#current || round.stage !== RoundStage.Selection) return
    this.#clearTimer()
    const { minCohort, maxCohort, uploadTimeoutMs, training } = round.config
    const { sampling } = this.#o.rounds
    // A session whose socket is closing may not have left the pool yet.
    const waiting = [...this.#pool].filter((session) => session.open)
    // The accountant's q is what this draws with (rounds/selection.ts): 1 for uniform, the rate for Poisson.
    const cohort =
      sampling.kind === 'poisson'
        ? samplePoisson(waiting, sampling.rate, this.#bits)
        : sampleWithoutReplacement(waiting, Math.min(maxCohort, waiting.length), this.#o.random)
    if (cohort.length < minCohort) {
      round.eligible = waiting.length
      this.#concluding = this.#abort(
        round,
        sampling.kind === 'poisson'
          ? `Poisson sampling at rate ${sampling.rate} selected ${cohort.length} of ${waiting.length} waiting sessions; minCohort is ${minCohort}`
          : `only ${waiting.length} sessions were waiting at the selection deadline; minCohort is ${minCohort}`,
      )
      return
    }
    const now = this.#o.now()
    let secure: SecureAggregation | undefined
    try {
      secure = this.#secureAggregation(round, cohort)
    } catch (error) {
      this.#concluding = this.#abort(round, `secure aggregation could not start: ${error instanceof Error ? error.message : String(error)}`)
      return
    }
    round.select(cohort, waiting.length, now, now + uploadTimeoutMs, secure)
    this.#o.counters.stage(RoundStage.Selection, now - round.createdAt)
    for (const session of cohort) session.round = round
    // A secure round ends when its groups have (each stage has its own deadline).
    if (secure === undefined) this.#setTimer(uploadTimeoutMs, () => this.#closeUploads(round, 'deadline'))
    this.#o.log.info({ roundId: round.id, participants: cohort.length, eligible: waiting.length }, 'cohort selected')
    // Write-ahead: the cohort is on record before any participant hears of the round, so a
    // crash can never leave sent plans unaccounted for. If the write fails the round goes on
    // (the failure is logged, and publishing will fail loudly if the store stays down).
    void this.#enqueue(async () => {
      try {
        await this.#o.store.updateRound(round.toRecord())
      } catch (error) {
        this.#o.log.error({ err: error, roundId: round.id }, 'could not record the cohort')
      }
    }).then(() => {
      if (round.stage !== RoundStage.Training) return // ended meanwhile (every participant left)
      const plan = round.plan(training)
      for (const session of round.sessions()) session.send(plan)
      round.secure?.start()
    })
  }

  /** The round's secure aggregation when the aggregator runs in `secagg` mode. */
  #secureAggregation(round: Round, cohort: readonly ClientSession[]): SecureAggregation | undefined {
    const settings = this.#o.rounds.secagg
    if (settings === null) return undefined
    const planned = this.#planned?.round === round ? this.#planned.privacy : undefined
    return new SecureAggregation({
      roundId: round.id,
      vectorLength: round.uploadLength,
      cohort,
      settings,
      privateClipNorm: planned?.clipNorm ?? null,
      ...(planned === undefined ? {} : { finish: planned.finishSum }),
      ...(planned === undefined || planned.distributed === null ? {} : { distributed: planned.distributed }),
      now: this.#o.now,
      log: this.#o.log,
      onSettled: () => this.#closeUploads(round, 'secagg'),
    })
  }

  #closeUploads(round: Round, by: UploadsClosedBy): void {
    if (round !== this.#current || round.stage !== RoundStage.Training) return
    this.#clearTimer()
    round.closeUploads(by)
    this.#concluding = this.#conclude(round, by)
  }

  async #conclude(round: Round, by: UploadsClosedBy): Promise<void> {
    const accepted = round.uploaded.size
    const shortfall = this.#shortfall(round, by)
    if (shortfall !== undefined) {
      await this.#abort(round, shortfall)
      return
    }
    const { model, registry, rounds, log, now } = this.#o
    try {
      const aggregate = await round.aggregate()
      const base = registry.latest(model.name)
      if (base.version !== round.baseVersion) {
        throw new HearthError('HEARTH_ERR_ROUND_FAILED', `base version ${round.baseVersion} is no longer the latest (${base.version})`)
      }
      const { weights, state: optimizerState } = await serverStep(rounds.optimizer, this.#o.store, this.#o.model.spec, base, aggregate)
      const bad = weights.findIndex((x) => !Number.isFinite(x))
      if (bad >= 0) throw new HearthError('HEARTH_ERR_ROUND_FAILED', `the new weights overflow float32 at element ${bad}`)
      const closedAt = now()
      const version = versionRecord(model.name, base.version + 1, weights, round.id, closedAt)
      const reason = publishReason(by)
      let privacyRecord = round.privacy
      let commit: PrivacyCommit | undefined
      const planned = this.#planned?.round === round ? this.#planned.privacy : undefined
      const modelPrivacy = this.#o.privacy
      if (planned !== undefined && modelPrivacy !== undefined) {
        if (aggregate.privacy === undefined) throw new HearthError('HEARTH_ERR_ROUND_FAILED', 'the DP strategy reported no privacy outcome')
        const concluded = modelPrivacy.conclude(planned, aggregate.privacy, { roundId: round.id, version: version.version, recordedAt: closedAt })
        privacyRecord = concluded.record
        commit = concluded.commit
      }
      const record = {
        ...round.toRecord(),
        stage: RoundStage.Done,
        outcome: RoundOutcome.Published,
        reason,
        closedAt,
        publishedVersion: version.version,
        privacy: privacyRecord,
      }
      // In the write queue, so no earlier snapshot of this round can land after the publish, and
      // the in-memory round only turns published once the version (and its ledger entry) is durable.
      await this.#enqueue(async () => {
        await registry.publish(record, version, commit, optimizerState)
        round.privacy = privacyRecord
        round.finish(RoundOutcome.Published, reason, closedAt, version.version)
        this.#observeTraining(round)
        if (commit !== undefined) modelPrivacy?.committed(commit)
      })
    } catch (error) {
      log.error({ err: error, roundId: round.id }, 'round failed to publish')
      await this.#abort(round, `aggregation failed: ${error instanceof Error ? error.message : String(error)}`)
      return
    }
    this.#o.counters.increment('roundsPublished')
    log.info({ roundId: round.id, version: round.publishedVersion, uploads: accepted, privacy: round.privacy?.clipping ?? undefined }, 'round published')
    this.#end(round)
  }

  /** Why `round` cannot publish (fewer than `minCohort` contributions), or undefined. */
  #shortfall(round: Round, by: UploadsClosedBy): string | undefined {
    const { minCohort } = round.config
    const secure = round.secure
    if (secure === undefined) {
      const accepted = round.uploaded.size
      return accepted < minCohort ? abortReason(by, accepted, round.pending(), minCohort) : undefined
    }
    // At shutdown, groups still running end without a sum; completed groups still count.
    if (by === 'shutdown') secure.stop(SHUTDOWN_REASON)
    return secure.shortfall(minCohort)
  }

  /** The privacy budget (or planning) refused the next round: record why, and open no more. */
  async #refuse(error: unknown): Promise<void> {
    const { log, now } = this.#o
    if (!(error instanceof HearthError && error.code === 'HEARTH_ERR_PRIVACY_BUDGET_EXCEEDED')) {
      log.error({ err: error }, 'could not plan the privacy of a round')
      this.#pause()
      return
    }
    this.#refused = error
    log.warn({ code: error.code }, `no more rounds: ${error.message}`)
    try {
      await this.#o.privacy?.refuse(error, now())
    } catch (storeError) {
      log.error({ err: storeError }, 'could not record the refusal')
    }
  }

  /** Records how long a round spent from selection to its end (training, upload, secure aggregation). */
  #observeTraining(round: Round): void {
    if (round.selectedAt !== null && round.closedAt !== null) this.#o.counters.stage(RoundStage.Training, round.closedAt - round.selectedAt)
  }

  async #abort(round: Round, reason: string): Promise<void> {
    round.finish(RoundOutcome.Aborted, reason, this.#o.now())
    this.#observeTraining(round)
    this.#o.counters.increment('roundsAborted')
    this.#o.log.warn({ roundId: round.id, reason }, 'round aborted')
    this.persist(round)
    await this.#writes
    this.#end(round)
  }

  /** Ends an operator round that never opened: on record as aborted with `reason`. */
  async #cancel(request: RequestedRound, reason: string): Promise<RoundRecord> {
    const record: RoundRecord = { ...request.record, stage: RoundStage.Done, outcome: RoundOutcome.Aborted, reason, closedAt: this.#o.now() }
    await this.#enqueue(() => this.#o.store.updateRound(record))
    this.#o.log.info({ roundId: record.id, reason }, 'round cancelled before it opened')
    this.#o.onEnd?.(record)
    return record
  }

  /** Tells the participants, frees them for the next round, and starts the pause. */
  #end(round: Round): void {
    this.#o.onEnd?.(round.toRecord())
    const result = round.result()
    for (const session of round.sessions()) {
      session.send(result)
      if (session.round === round) session.round = undefined
    }
    round.release()
    if (this.#planned?.round === round) this.#planned = undefined
    if (this.#current === round) this.#current = undefined
    this.#pause()
  }

  #pause(): void {
    this.#pausedUntil = this.#o.now() + this.#o.rounds.pauseMs
    if (this.#closing) return
    // A started operator round does not wait for the pause.
    if (this.#queue.length > 0) queueMicrotask(() => this.poke())
    else this.#setTimer(this.#o.rounds.pauseMs, () => this.poke())
  }

  #setTimer(ms: number, fn: () => void): void {
    this.#clearTimer()
    this.#timer = setTimeout(fn, ms)
    this.#timer.unref()
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
  }

  /** Runs `task` after every queued write; the queue itself never rejects. */
  #enqueue(task: () => Promise<void>): Promise<void> {
    const run = this.#writes.then(task)
    this.#writes = run.catch(() => {})
    return run
  }
}

function abortReason(by: UploadsClosedBy, accepted: number, pending: number, minCohort: number): string {
  switch (by) {
    case 'deadline':
      return `the upload deadline passed with ${accepted} accepted uploads; minCohort is ${minCohort}`
    case 'complete':
      return `every participant uploaded or left, with ${accepted} accepted uploads; minCohort is ${minCohort}`
    case 'dropouts':
      return `participants dropped out: ${accepted} accepted and ${pending} pending uploads cannot reach minCohort ${minCohort}`
    case 'shutdown':
      return SHUTDOWN_REASON
    case 'secagg':
      return `secure aggregation ended with ${accepted} masked inputs; minCohort is ${minCohort}`
  }
}

function publishReason(by: UploadsClosedBy): string {
  switch (by) {
    case 'deadline':
      return 'uploads closed at the deadline'
    case 'complete':
      return 'every participant uploaded or left'
    case 'dropouts':
      return 'uploads closed after dropouts'
    case 'shutdown':
      return `uploads closed early: ${SHUTDOWN_REASON}`
    case 'secagg':
      return 'secure aggregation ended in every group'
  }
}

/** The settings recorded with each round (also by a cluster's coordinator, `aggregator/cluster`). */
export function roundConfig(r: ResolvedRoundOptions): RoundConfig {
  return {
    minCohort: r.minCohort,
    maxCohort: r.maxCohort,
    selectionTimeoutMs: r.selectionTimeoutMs,
    uploadTimeoutMs: r.uploadTimeoutMs,
    training: r.training,
    strategy: strategyName(r),
    optimizer: r.optimizer.name,
    sampling: r.sampling,
  }
}

/** The strategy recorded with each round: what combines the updates, and the DP wrapper if any. */
export function strategyName(r: ResolvedRoundOptions): string {
  const inner = r.secagg === null ? r.strategy.name : `secure-sum(${r.secagg.variant})`
  return r.privacy === null ? inner : `${r.privacy.mode}-dp(${inner})`
}
