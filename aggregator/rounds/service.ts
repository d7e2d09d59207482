/**
 * The client side of the round protocol, independent of the transport: check-in, uploads and
 * every rejection. One {@link RoundEngine} per model does the rounds; this service routes
 * messages to them, answers each bad message with an `error` carrying its catalogue code, and
 * counts it (app-wide, and against the round it concerns) without disturbing the round.
 *
 * A session is refused (error, then close) only when the session itself is invalid: unsupported
 * protocol, wrong app key, unknown model, or frames before check-in (protocol/messages.ts).
 *
 * It also takes the operators' side of rounds (`plugins/admin-rounds.ts`): {@link create},
 * {@link start} and {@link stop}, each routed to the engine of the round's model.
 */
import type { FastifyBaseLogger } from 'fastify'
import { HearthError } from '../../protocol/errors.ts'
import { decodeFrame } from '../../protocol/frames.ts'
import type { Frame } from '../../protocol/frames.ts'
import { RoundStage } from '../../protocol/messages.ts'
import { federatedLayout } from '../../protocol/model-spec.ts'
import type { CheckinMessage } from '../../protocol/messages.ts'
import { matchesAnySecret } from '../auth.ts'
import type { RoundDocument } from '../config/round-document.ts'
import { planRequestedRound } from '../config/round-request.ts'
import type { AggregatorCounters } from '../counters.ts'
import type { ModelRegistry } from '../models/registry.ts'
import type { ResolvedRoundOptions } from '../options.ts'
import { cryptoRandomInt } from '../random.ts'
import type { RandomInt } from '../random.ts'
import { ModelPrivacy } from '../privacy/model-privacy.ts'
import { freshRound } from '../store/store.ts'
import type { AggregatorStore, RoundRecord } from '../store/store.ts'
import { controlMessageLimit, parseClientMessage } from './client-messages.ts'
import { RoundEngine, SHUTDOWN_REASON } from './engine.ts'
import type { RoundStart } from './engine.ts'
import type { RoundEngineOptions } from './engine.ts'
import type { Round } from './round.ts'
import { ClientSession, CloseCode } from './session.ts'
import type { SessionTransport } from './session.ts'

export interface RoundServiceOptions {
  readonly registry: ModelRegistry
  readonly store: AggregatorStore
  readonly counters: AggregatorCounters
  readonly rounds: ResolvedRoundOptions
  readonly appKeys: readonly string[]
  readonly log: FastifyBaseLogger
  /** Default `cryptoRandomInt`. Inject only in tests of the engine itself. */
  readonly random?: RandomInt
  /** Default `Date.now`. */
  readonly now?: () => number
  /** Told of each round's final record (the audit log). */
  readonly onRoundEnd?: (record: RoundRecord) => void
  /**
   * Builds each model's engine. Default a {@link RoundEngine}; a cluster replica passes its own
   * (`aggregator/cluster/cluster-engine.ts`), which runs rounds with the other replicas.
   */
  readonly createEngine?: (options: RoundEngineOptions) => ModelEngine
}

/** What the service asks of a model's engine: a {@link RoundEngine}, or a cluster replica's. */
export type ModelEngine = Pick<
  RoundEngine,
  'waiting' | 'current' | 'refused' | 'join' | 'leave' | 'poke' | 'upload' | 'control' | 'persist' | 'persistProgress' | 'close'
>

/** In cluster mode the coordinator schedules every round (`cluster/coordinator.ts`). */
function notByHand(): HearthError {
  return new HearthError('HEARTH_ERR_ROUND_STATE', 'in cluster mode rounds are scheduled by the coordinator: they cannot be created, started or stopped by hand')
}

/** Finished rounds kept in memory to answer late, duplicate and stray uploads precisely. */
const RECENT_ROUNDS = 256

export class RoundService {
  readonly #registry: ModelRegistry
  readonly #store: AggregatorStore
  readonly #roundOptions: ResolvedRoundOptions
  readonly #now: () => number
  readonly #counters: AggregatorCounters
  readonly #appKeys: readonly string[]
  readonly #log: FastifyBaseLogger
  readonly #controlLimit: number
  readonly #engines = new Map<string, ModelEngine>()
  readonly #privacy: ReadonlyMap<string, ModelPrivacy>
  /** Every open connection, to say goodbye with 1001 on close. */
  readonly #sessions = new Set<ClientSession>()
  /** Rounds of this process by id, oldest first; live rounds are never evicted. */
  readonly #rounds = new Map<number, Round>()
  /** Every id up to this one was given to some round (maybe by an earlier process). */
  #highestRoundId: number
  #closed = false

  private constructor(options: RoundServiceOptions, highestRoundId: number, privacy: ReadonlyMap<string, ModelPrivacy>) {
    this.#registry = options.registry
    this.#store = options.store
    this.#roundOptions = options.rounds
    this.#now = options.now ?? Date.now
    this.#counters = options.counters
    this.#appKeys = options.appKeys
    this.#log = options.log
    this.#controlLimit = controlMessageLimit(options.rounds.secagg)
    this.#highestRoundId = highestRoundId
    this.#privacy = privacy
    const createEngine = options.createEngine ?? ((engine: RoundEngineOptions) => new RoundEngine(engine))
    for (const name of options.registry.names()) {
      options.rounds.optimizer.checkLayout?.(federatedLayout(options.registry.model(name).spec))
      this.#engines.set(
        name,
        createEngine({
          model: options.registry.model(name),
          rounds: options.rounds,
          store: options.store,
          registry: options.registry,
          counters: options.counters,
          log: options.log.child({ model: name }),
          random: options.random ?? cryptoRandomInt,
          privacy: privacy.get(name),
          now: options.now ?? Date.now,
          onRound: (round) => this.#remember(round),
          onEnd: options.onRoundEnd,
        }),
      )
    }
  }

  static async create(options: RoundServiceOptions): Promise<RoundService> {
    const privacy = new Map<string, ModelPrivacy>()
    const resolved = options.rounds.privacy
    if (resolved === null) {
      for (const name of options.registry.names()) {
        if ((await options.store.listLedger(name)).length === 0) continue
        options.log.warn({ model: name }, 'this model has a privacy ledger but differential privacy is off: versions published now carry no guarantee')
      }
    } else {
      for (const name of options.registry.names()) {
        privacy.set(
          name,
          await ModelPrivacy.open({
            store: options.store,
            model: name,
            vectorLength: options.registry.model(name).vectorLength,
            privacy: resolved,
            sampling: options.rounds.sampling,
            strategy: options.rounds.strategy,
            secagg: options.rounds.secagg,
          }),
        )
      }
    }
    return new RoundService(options, await options.store.lastRoundId(), privacy)
  }

  /** The engine of `model`, if it is served. */
  engine(model: string): ModelEngine | undefined {
    return this.#engines.get(model)
  }

  /** The privacy bookkeeping of `model`, when differential privacy is on. */
  privacy(model: string): ModelPrivacy | undefined {
    return this.#privacy.get(model)
  }

  /** A round of this process by id, if still remembered. */
  round(id: number): Round | undefined {
    return this.#rounds.get(id)
  }

  /**
   * Creates a round of `document.model` in stage `created`, to run with the document's
   * per-round settings once started. Throws `HEARTH_ERR_UNKNOWN_MODEL`, or a
   * `RoundDocumentError` listing what the aggregator refuses (`config/round-request.ts`).
   */
  async create(document: RoundDocument): Promise<RoundRecord> {
    const engine = this.#engines.get(document.model)
    if (engine === undefined) throw new HearthError('HEARTH_ERR_UNKNOWN_MODEL', `no model named ${JSON.stringify(document.model)}`)
    if (!(engine instanceof RoundEngine)) throw notByHand()
    const plan = planRequestedRound(document, this.#roundOptions)
    const record = await this.#store.createRound(
      freshRound({
        model: document.model,
        baseVersion: this.#registry.latest(document.model).version,
        stage: RoundStage.Created,
        config: plan.config,
        createdAt: this.#now(),
      }),
    )
    this.#highestRoundId = Math.max(this.#highestRoundId, record.id)
    engine.add(plan.strategy === undefined ? { record } : { record, strategy: plan.strategy })
    return record
  }

  /** Starts created round `id` (see `RoundEngine.start`); `model` is the round's. */
  async start(id: number): Promise<RoundStart & { readonly model: string }> {
    const [model, engine] = await this.#holding(id)
    return { ...engine.start(id), model }
  }

  /**
   * Stops round `id` on behalf of `operator` (see `RoundEngine.stop`). Throws
   * `HEARTH_ERR_UNKNOWN_ROUND`, or `HEARTH_ERR_ROUND_STATE` for a round that has ended.
   */
  async stop(id: number, operator: string): Promise<RoundRecord> {
    const [, engine] = await this.#holding(id)
    return engine.stop(id, operator)
  }

  /** The model and engine holding round `id`; throws when none does, saying why. */
  async #holding(id: number): Promise<readonly [string, RoundEngine]> {
    for (const [model, engine] of this.#engines) {
      if (!(engine instanceof RoundEngine)) throw notByHand()
      if (engine.holds(id)) return [model, engine]
    }
    const record = await this.#store.getRound(id)
    if (record === undefined) throw new HearthError('HEARTH_ERR_UNKNOWN_ROUND', `round ${id}`)
    const state = record.outcome === null ? record.stage : `${record.outcome} (${record.reason ?? 'no reason recorded'})`
    throw new HearthError('HEARTH_ERR_ROUND_STATE', `round ${id} is ${state}`)
  }

  /** A new connection; the caller forwards its messages, size errors and close. */
  connect(transport: SessionTransport): ClientSession {
    const session = new ClientSession(transport)
    if (this.#closed) session.close(CloseCode.GoingAway, SHUTDOWN_REASON)
    else {
      this.#sessions.add(session)
      this.#counters.connection(1)
    }
    return session
  }

  /** One message from `session`: a binary frame or a JSON text message. */
  receive(session: ClientSession, data: Uint8Array, isBinary: boolean): void {
    this.#counters.received(data.byteLength)
    if (this.#closed || !session.open) return
    try {
      if (isBinary) this.#frame(session, data)
      else this.#text(session, data)
    } catch (error) {
      if (!(error instanceof HearthError)) {
        this.#log.error({ err: error, session: session.id }, 'failed to handle a client message')
      }
      this.#reject(session, asHearthError(error))
    }
  }

  /**
   * `session` sent a message above the WebSocket's `maxPayload`. `ws` has already started
   * closing the connection with 1009 (RFC 6455 §7.4.1), so there is no socket left to answer
   * on: the close code is the answer, and the rejection is counted.
   */
  oversized(session: ClientSession): void {
    this.#count('HEARTH_ERR_BODY_TOO_LARGE', session.round)
  }

  /** The connection of `session` closed. */
  disconnect(session: ClientSession): void {
    session.open = false
    if (this.#sessions.delete(session)) this.#counters.connection(-1)
    if (session.model !== undefined) this.#engines.get(session.model)?.leave(session)
  }

  /**
   * Finishes or aborts every running round (see `RoundEngine.close`), so participants hear how
   * it ended, then closes every connection with 1001 Going Away (RFC 6455 §7.4.1).
   */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await Promise.all([...this.#engines.values()].map((engine) => engine.close()))
    for (const session of this.#sessions) session.close(CloseCode.GoingAway, SHUTDOWN_REASON)
    this.#sessions.clear()
  }

  #text(session: ClientSession, data: Uint8Array): void {
    let message
    try {
      message = parseClientMessage(data, this.#controlLimit)
    } catch (error) {
      if (error instanceof HearthError && error.code === 'HEARTH_ERR_UNSUPPORTED_PROTOCOL' && session.model === undefined) {
        this.#refuse(session, error)
        return
      }
      throw error
    }
    if (message.type === 'checkin') {
      this.#checkin(session, message)
      return
    }
    const engine = session.model === undefined ? undefined : this.#engines.get(session.model)
    if (engine === undefined) {
      this.#refuse(session, new HearthError('HEARTH_ERR_UNAUTHORIZED', 'check in before taking part in rounds'))
      return
    }
    try {
      engine.control(session, message)
    } catch (error) {
      if (!(error instanceof HearthError)) throw error
      this.#reject(session, error, message.roundId, session.round)
    }
  }

  #checkin(session: ClientSession, message: CheckinMessage): void {
    if (session.model !== undefined) {
      throw new HearthError('HEARTH_ERR_MALFORMED_MESSAGE', 'this session has already checked in')
    }
    if (!matchesAnySecret(message.appKey, this.#appKeys)) {
      this.#refuse(session, new HearthError('HEARTH_ERR_UNAUTHORIZED', 'unknown app key'))
      return
    }
    const engine = this.#engines.get(message.model)
    if (engine === undefined) {
      this.#refuse(session, new HearthError('HEARTH_ERR_UNKNOWN_MODEL', `no model named ${JSON.stringify(message.model)}`))
      return
    }
    session.model = message.model
    this.#counters.increment('sessionsCheckedIn')
    session.send({
      type: 'welcome',
      sessionId: session.id,
      model: message.model,
      latestVersion: this.#registry.latest(message.model).version,
    })
    engine.join(session)
  }

  #frame(session: ClientSession, data: Uint8Array): void {
    if (session.model === undefined) {
      this.#refuse(session, new HearthError('HEARTH_ERR_UNAUTHORIZED', 'check in before sending frames'))
      return
    }
    const frame: Frame = decodeFrame(data)
    const round = this.#rounds.get(frame.id)
    if (round === undefined) {
      // Ids up to the highest ever given belong to rounds that ended (or, from an earlier
      // process, were aborted at startup); anything above names no round at all.
      const code = frame.id >= 1 && frame.id <= this.#highestRoundId ? 'HEARTH_ERR_ROUND_CLOSED' : 'HEARTH_ERR_UNKNOWN_ROUND'
      this.#reject(session, new HearthError(code, `round ${frame.id}`), frame.id)
      return
    }
    try {
      this.#engines.get(round.model)?.upload(round, session, frame, data)
    } catch (error) {
      if (!(error instanceof HearthError)) throw error
      this.#reject(session, error, frame.id, round)
    }
  }

  /** Answers `session` with `error`, counts it, and carries on. */
  #reject(session: ClientSession, error: HearthError, roundId?: number, round?: Round): void {
    this.#count(error.code, round ?? session.round)
    this.#log.debug({ session: session.id, code: error.code, roundId }, error.message)
    session.send(
      roundId === undefined
        ? { type: 'error', code: error.code, message: error.message }
        : { type: 'error', code: error.code, message: error.message, roundId },
    )
  }

  /** Answers `session` with `error`, counts it, and closes the connection. */
  #refuse(session: ClientSession, error: HearthError): void {
    this.#count(error.code, undefined)
    this.#log.info({ session: session.id, code: error.code }, `session refused: ${error.message}`)
    session.send({ type: 'error', code: error.code, message: error.message })
    session.close(CloseCode.PolicyViolation, error.code)
  }

  #count(code: HearthError['code'], round: Round | undefined): void {
    this.#counters.reject(code)
    if (round === undefined) return
    round.countRejection(code)
    // Throttled: a flood of bad frames must not cost one synced commit each.
    this.#engines.get(round.model)?.persistProgress(round)
  }

  #remember(round: Round): void {
    this.#highestRoundId = Math.max(this.#highestRoundId, round.id)
    this.#rounds.set(round.id, round)
    if (this.#rounds.size <= RECENT_ROUNDS) return
    for (const [id, old] of this.#rounds) {
      if (this.#rounds.size <= RECENT_ROUNDS) break
      if (old.outcome !== null) this.#rounds.delete(id)
    }
  }
}

function asHearthError(error: unknown): HearthError {
  return error instanceof HearthError ? error : new HearthError('HEARTH_ERR_INTERNAL', undefined, { cause: error })
}
