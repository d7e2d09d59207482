/**
 * One model's engine on a cluster replica, in place of `RoundEngine` (`rounds/service.ts` routes
 * this replica's sessions to it). It plays two parts:
 *
 * - **replica**, always: puts each checked-in session's pseudonym into the cluster-wide pool;
 *   when the coordinator assigns groups of a round to this replica, runs secure aggregation for
 *   them over its own sockets (`SecureAggregation` with the coordinator's groups and L); writes
 *   each group's unmasked sum and counts once it settles; tells its participants how the round
 *   ended once the round record says so.
 * - **coordinator**, while this replica holds the model's lease (`coordinator.ts`).
 *
 * No individual update leaves this process: a group's sum is an aggregate of at least t inputs,
 * unmasked as a whole by `SecAggServer`. The round record belongs to the coordinator; this
 * replica never writes it (rejections it counts stay in its metrics).
 */
import type { FastifyBaseLogger } from 'fastify'
import { HearthError } from '../../protocol/errors.ts'
import type { Frame } from '../../protocol/frames.ts'
import { RoundOutcome, RoundStage } from '../../protocol/messages.ts'
import type { SecAggClientMessage } from '../../protocol/secagg/messages.ts'
import type { RoundEngineOptions } from '../rounds/engine.ts'
import { SHUTDOWN_REASON } from '../rounds/engine.ts'
import { Round } from '../rounds/round.ts'
import type { ResolvedSecAgg } from '../rounds/secagg-options.ts'
import { SecureAggregation } from '../rounds/secure-aggregation.ts'
import type { ModelEngine } from '../rounds/service.ts'
import type { ClientSession } from '../rounds/session.ts'
import type { SecAggGroupRecord } from '../store/store.ts'
import type { AssignedGroup, ClusterDb } from './cluster-db.ts'
import { RoundCoordinator } from './coordinator.ts'

export interface ClusterEngineOptions {
  readonly engine: RoundEngineOptions
  readonly replica: string
  readonly db: ClusterDb
  readonly secagg: ResolvedSecAgg
  readonly replicaTimeoutMs: number
}

/** A group needs at least 3 clients (`protocol/secagg/groups.ts`). */
const MIN_GROUP = 3

export class ClusterEngine implements ModelEngine {
  readonly coordinator: RoundCoordinator
  readonly #o: RoundEngineOptions
  readonly #replica: string
  readonly #db: ClusterDb
  readonly #secagg: ResolvedSecAgg
  readonly #log: FastifyBaseLogger
  readonly #pool = new Map<string, ClientSession>()
  /** Rounds this replica runs groups of, until they end. */
  readonly #rounds = new Map<number, Round>()
  /** Round ids whose assignment was taken up (the groups of one round start together). */
  readonly #started = new Set<number>()
  #writes: Promise<void> = Promise.resolve()
  #closing = false

  constructor(options: ClusterEngineOptions) {
    this.#o = options.engine
    this.#replica = options.replica
    this.#db = options.db
    this.#secagg = options.secagg
    this.#log = options.engine.log
    const { model, rounds, store, registry, counters, log, random, now, onEnd } = options.engine
    this.coordinator = new RoundCoordinator({
      replica: options.replica,
      db: options.db,
      model,
      rounds,
      secagg: options.secagg,
      store,
      registry,
      counters,
      log: log.child({ coordinator: true }),
      random,
      now,
      replicaTimeoutMs: options.replicaTimeoutMs,
      ...(onEnd === undefined ? {} : { onEnd }),
    })
  }

  get model(): string {
    return this.#o.model.name
  }

  /** Sessions of this model checked in on this replica. */
  get waiting(): number {
    return this.#pool.size
  }

  /** The newest round this replica runs groups of. */
  get current(): Round | undefined {
    return [...this.#rounds.values()].at(-1)
  }

  get refused(): HearthError | undefined {
    return undefined
  }

  /** Pseudonyms of the sessions held here, to put back in the pool after this replica was taken for dead. */
  sessionIds(): string[] {
    return [...this.#pool.keys()]
  }

  join(session: ClientSession): void {
    if (this.#closing) return
    this.#pool.set(session.id, session)
    this.#write('could not add a session to the cluster pool', () => this.#db.addSessions(this.#replica, this.model, [session.id], this.#o.now()))
  }

  leave(session: ClientSession): void {
    if (!this.#pool.delete(session.id)) return
    this.#write('could not remove a session from the cluster pool', () => this.#db.removeSession(session.id))
    const round = session.round
    if (round === undefined || !this.#rounds.has(round.id)) return
    round.secure?.disconnected(session)
    if (round.drop(session)) this.#o.counters.increment('participantsDropped')
  }

  /** Rounds open on the coordinator's schedule (`tick`), not on check-ins. */
  poke(): void {}

  upload(round: Round, session: ClientSession, frame: Frame, bytes: Uint8Array): void {
    round.accept(session, frame, this.#o.now(), bytes)
    this.#o.counters.increment('uploadsAccepted')
    session.send({ type: 'upload-accepted', roundId: round.id })
  }

  control(session: ClientSession, message: SecAggClientMessage): void {
    const round = session.round
    if (round === undefined || !this.#rounds.has(round.id)) throw new HearthError('HEARTH_ERR_ROUND_CLOSED', `no round of this session takes ${message.type}`)
    const secure = round.secure
    if (secure === undefined || round.stage !== RoundStage.Training) {
      throw new HearthError('HEARTH_ERR_ROUND_CLOSED', `round ${round.id} takes no secure-aggregation message now`)
    }
    secure.receive(session, message)
  }

  /** The coordinator owns the round record; this replica has nothing of it to write. */
  persist(): void {}

  /** As `persist`. */
  persistProgress(): void {}

  /**
   * Takes up the groups assigned to this replica (by round), and ends the local rounds the
   * record says have ended. Called on each heartbeat and on notifications.
   */
  async sync(assigned: readonly AssignedGroup[]): Promise<void> {
    const byRound = new Map<number, AssignedGroup[]>()
    for (const g of assigned) if (g.model === this.model && !this.#started.has(g.roundId)) byRound.set(g.roundId, [...(byRound.get(g.roundId) ?? []), g])
    for (const [roundId, groups] of byRound) await this.#start(roundId, groups)
    for (const round of [...this.#rounds.values()]) await this.#checkEnded(round)
  }

  /**
   * Stops the groups still running here (each settles without a sum and says so in the table),
   * then steps down as coordinator (its round aborts). Resolves once every write is done.
   */
  async close(): Promise<void> {
    this.#closing = true
    for (const round of this.#rounds.values()) round.secure?.stop(SHUTDOWN_REASON)
    await this.#writes
    await this.coordinator.close()
    this.#pool.clear()
  }

  async #start(roundId: number, groups: readonly AssignedGroup[]): Promise<void> {
    if (this.#closing) return
    this.#started.add(roundId)
    const { store, registry, model, rounds, now, log } = this.#o
    const record = await store.getRound(roundId)
    if (record === undefined || record.outcome !== null) return
    // Participants fetch the round's base version from this replica.
    await registry.refresh(model.name)
    const present = groups.map((g) => ({ groupId: g.groupId, sessions: g.sessions.flatMap((id) => this.#live(id)) }))
    const viable = present.filter((g) => g.sessions.length >= MIN_GROUP)
    // A group whose clients left before it could start settles at once, without a sum.
    for (const g of present.filter((p) => p.sessions.length < MIN_GROUP)) {
      const assignedSize = groups.find((a) => a.groupId === g.groupId)?.sessions.length ?? 0
      this.#write('could not report a group', () =>
        this.#db.settle(this.#replica, { roundId, groupId: g.groupId, sum: null, survivors: 0, record: gone(g.groupId, assignedSize, g.sessions.length) }),
      )
    }
    if (viable.length === 0 || this.#closing) return
    const cohort = viable.flatMap((g) => g.sessions)
    const round = new Round(record, model.vectorLength, rounds.strategy, null)
    let secure: SecureAggregation
    try {
      secure = new SecureAggregation({
        roundId,
        vectorLength: model.vectorLength,
        cohort,
        groups: viable,
        maxSummands: groups[0]?.maxSummands ?? Math.max(...viable.map((g) => g.sessions.length)),
        settings: this.#secagg,
        privateClipNorm: null,
        now,
        log,
        onSettled: () => this.#settled(round, secure),
      })
    } catch (error) {
      log.error({ err: error, roundId }, 'could not start the assigned secure-aggregation groups')
      return
    }
    round.select(cohort, record.eligible, now(), record.uploadDeadline ?? now() + rounds.uploadTimeoutMs, secure)
    for (const session of cohort) session.round = round
    this.#rounds.set(roundId, round)
    this.#o.onRound(round)
    const plan = round.plan(rounds.training)
    for (const session of cohort) session.send(plan)
    secure.start()
    log.info({ roundId, groups: viable.length, participants: cohort.length }, 'running assigned secure-aggregation groups')
  }

  /** Every group of `round` here completed or aborted: report each one, with its sum if it has one. */
  #settled(round: Round, secure: SecureAggregation): void {
    if (round.outcome !== null) return // the coordinator ended the round first: nothing to hand over
    if (round.stage === RoundStage.Training) round.closeUploads('secagg')
    const records = new Map(secure.record().groups.map((g) => [g.groupId, g]))
    for (const outcome of secure.outcomes()) {
      const record = records.get(outcome.groupId)
      if (record === undefined) continue
      this.#write('could not report a group', async () => {
        await this.#db.settle(this.#replica, {
          roundId: round.id,
          groupId: outcome.groupId,
          sum: outcome.sum ?? null,
          survivors: outcome.sum === undefined ? 0 : (outcome.survivors ?? 0),
          record,
        })
      })
    }
    this.#write('could not notify the coordinator', () => this.#db.notify('settled', this.model))
  }

  async #checkEnded(round: Round): Promise<void> {
    const record = await this.#o.store.getRound(round.id)
    if (record === undefined || record.outcome === null) return
    const published = record.outcome === RoundOutcome.Published && record.publishedVersion !== null
    // Serve the new version before telling participants about it.
    if (published) await this.#o.registry.refresh(this.model)
    round.finish(record.outcome, record.reason ?? 'ended', this.#o.now(), record.publishedVersion)
    const result = round.result()
    for (const session of round.sessions()) {
      session.send(result)
      if (session.round === round) session.round = undefined
    }
    round.release()
    this.#rounds.delete(round.id)
    this.#started.delete(round.id) // an ended round is never assigned again
  }

  #live(id: string): ClientSession[] {
    const session = this.#pool.get(id)
    return session?.open === true ? [session] : []
  }

  /** Queues a database write after the earlier ones; failures are logged, the queue goes on. */
  #write(what: string, task: () => Promise<unknown>): void {
    this.#writes = this.#writes.then(task).then(
      () => {},
      (error: unknown) => this.#log.error({ err: error }, what),
    )
  }
}

/** A group that could not start: its clients left between the draw and the assignment. */
function gone(groupId: number, clients: number, present: number): SecAggGroupRecord {
  return {
    groupId,
    clients,
    degree: 0,
    threshold: MIN_GROUP,
    state: 'aborted',
    advertised: null,
    shared: null,
    masked: null,
    unmasked: null,
    survivors: 0,
    contributed: false,
    reason: `HEARTH_ERR_SECAGG_THRESHOLD: only ${present} of its ${clients} clients were still connected when the group was to start`,
  }
}
