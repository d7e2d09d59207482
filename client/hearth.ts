/**
 * `Hearth`, the object an app holds: records interactions, keeps the on-device model current
 * and takes part in federated rounds. Environment-neutral: the browser entry (`index.ts`)
 * supplies a comlink proxy of the worker and the page's WebSocket; Node simulations supply the
 * worker core itself and the `ws` package.
 */
import { HearthError } from '../protocol/errors.ts'
import { toInteractionEvent } from '../protocol/events.ts'
import type { EventContext, InteractionInput } from '../protocol/events.ts'
import type { TrainingPlan } from '../protocol/messages.ts'
import type { HearthExport, PersonalizationSettings } from '../protocol/personal-data.ts'
import { appOrderReason, toCandidates, unpackRanking } from '../protocol/ranking.ts'
import type { DecisionRecord, RankCandidate, RankOptions, RankResult } from '../protocol/ranking.ts'
import type { DeviceStats, HearthWorkerApi, LocalTrainingResult, OffPolicyReport, OffPolicyRequest, RoundParticipation, TrainingBudget, WorkerInfo } from '../worker/api.ts'
import type { HearthEventMap, HearthEventName } from './events.ts'
import type { NetworkSignal } from './offline/network-signal.ts'
import type { OfflineSupport } from './offline/offline-support.ts'
import { resolveOptions } from './options.ts'
import type { HearthOptions, ResolvedOptions } from './options.ts'
import { RecordBuffer } from './record-buffer.ts'
import { RoundParticipant } from './round-participant.ts'
import { TrainingScheduler } from './training-scheduler.ts'
import type { IdleSignal } from './training-scheduler.ts'
import { ModelFetcher } from './transport/model-fetcher.ts'
import type { FetchFunction } from './transport/model-fetcher.ts'
import { RoundSocket } from './transport/round-socket.ts'
import type { SocketFactory } from './transport/round-socket.ts'
import { transfer } from 'comlink'

/** What `createHearth` needs from its environment. */
export interface HearthDependencies {
  /** The worker API: a comlink proxy in browsers, the worker core itself in Node. */
  readonly worker: HearthWorkerApi
  readonly createSocket: SocketFactory
  readonly fetch: FetchFunction
  /** Base URL of the tfjs `.wasm` files, passed on to the worker. */
  readonly wasmBaseUrl?: string
  /** Called once by `close()`, after the worker API is closed (e.g. `worker.terminate()`). */
  readonly dispose?: () => void
  /** When the page is idle or hidden, for scheduled training. Absent (Node): no automatic training. */
  readonly idle?: IdleSignal
  /** The page's service worker and caches. Absent (Node): nothing to register or remove. */
  readonly offline?: OfflineSupport
  /** When the network comes or goes, to end the round session. Absent (Node): never. */
  readonly network?: NetworkSignal
}

/** Local fine-tuning defaults, used by `train()` without arguments. */
const LOCAL_TRAINING: TrainingPlan = { epochs: 1, batchSize: 64, learningRate: 0.05, maxExamples: 5_000 }

export class Hearth {
  readonly #options: ResolvedOptions
  readonly #deps: HearthDependencies
  readonly #events = new EventTarget()
  readonly #buffer: RecordBuffer
  readonly #fetcher: ModelFetcher
  #socket: RoundSocket | null = null
  #participant: RoundParticipant | null = null
  #modelVersion: number | null
  #backend: WorkerInfo['backend']
  #adopting: Promise<void> = Promise.resolve()
  #closed = false
  #paused: boolean
  /** The user's choice (`setFederated`); rounds also need the app's `federated` option. */
  #userFederated: boolean
  /** The round this device trains for and has not yet uploaded to, if any. */
  #roundInProgress: number | null = null
  #stopNetwork: (() => void) | null = null
  readonly #scheduler: TrainingScheduler | null

  private constructor(options: ResolvedOptions, deps: HearthDependencies, info: WorkerInfo, fetcher: ModelFetcher, settings: PersonalizationSettings) {
    this.#options = options
    this.#deps = deps
    this.#fetcher = fetcher
    this.#modelVersion = info.modelVersion
    this.#backend = info.backend
    this.#paused = settings.paused
    this.#userFederated = settings.federated !== false
    this.#buffer = new RecordBuffer((events) => deps.worker.record(events), options.flushIntervalMs)
    const schedule = options.training
    this.#scheduler =
      schedule === null || deps.idle === undefined
        ? null
        : new TrainingScheduler({
            schedule,
            plan: { ...LOCAL_TRAINING, ...schedule.plan },
            worker: deps.worker,
            signal: deps.idle,
            enabled: () => !this.#closed && !this.#paused,
            flush: () => this.flush(),
            onTrained: (detail) => this.#emit('training', detail),
            onError: (error) => this.#emit('error', { error: asHearthError(error) }),
          })
  }

  /** @internal Use `Hearth.init()` in browsers or `createHearth()` in Node. */
  static async create(options: HearthOptions, deps: HearthDependencies): Promise<Hearth> {
    const resolved = resolveOptions(options)
    const fetcher = new ModelFetcher(resolved.aggregatorUrl, resolved.model, resolved.appKey, deps.fetch)
    const info = await fetcher.info()
    const workerInfo = await deps.worker.init({
      dbName: resolved.dbName,
      spec: info.spec,
      backends: resolved.backends,
      ...(deps.wasmBaseUrl === undefined ? {} : { wasmBaseUrl: deps.wasmBaseUrl }),
      ...(resolved.personalization === undefined ? {} : { personalization: resolved.personalization }),
    })
    const hearth = new Hearth(resolved, deps, workerInfo, fetcher, await deps.worker.settings())
    void deps.offline?.registered.then((error) => {
      // A task later, so an app that attaches its listener as soon as `init()` resolves hears it.
      if (error !== null) setTimeout(() => hearth.#emit('error', { error }))
    })
    if (hearth.federated) hearth.#joinRounds()
    else if (info.latestVersion > 0) await hearth.#adopt(info.latestVersion)
    hearth.#stopNetwork = deps.network?.subscribe(() => hearth.#restartRounds()) ?? null
    return hearth
  }

  /** The global model version on this device, or null before the first download. */
  get modelVersion(): number | null {
    return this.#modelVersion
  }

  /** The TensorFlow.js backend the worker runs on. */
  get backend(): WorkerInfo['backend'] {
    return this.#backend
  }

  /** True while the device is connected to the aggregator and can be selected for rounds. */
  get connected(): boolean {
    return this.#socket?.connected ?? false
  }

  /**
   * Records one interaction on the device. Validates synchronously (throws
   * `HEARTH_ERR_INVALID_ARGUMENT` naming the bad field) and stores in batches; call `flush()`
   * to wait until it is written.
   */
  record(input: InteractionInput): void {
    this.#assertOpen()
    const event = toInteractionEvent(input, Date.now())
    // Paused: validated (mistakes still surface), then dropped. The worker drops too.
    if (this.#paused) return
    this.#buffer.push(event)
    this.#scheduler?.noteEvents(1)
  }

  /** Resolves once every recorded event is in the device store. */
  flush(): Promise<void> {
    return this.#buffer.flush()
  }

  /** Counts of what the device holds. */
  async stats(): Promise<DeviceStats> {
    this.#assertOpen()
    await this.flush()
    return this.#deps.worker.stats()
  }

  /** How many stored events happened at or after `since` (epoch ms). */
  async countEvents(since: number): Promise<number> {
    this.#assertOpen()
    await this.flush()
    return this.#deps.worker.countEvents(since)
  }

  /** The rounds this device took part in, oldest first: what it sent is a count of numbers, never data. */
  async rounds(): Promise<RoundParticipation[]> {
    this.#assertOpen()
    return this.#deps.worker.rounds()
  }

  /** Fine-tunes the model on this device's events now, off the main thread, within `budget` if given. */
  async train(plan: Partial<TrainingPlan> = {}, budget?: TrainingBudget): Promise<LocalTrainingResult> {
    this.#assertOpen()
    await this.flush()
    return this.#deps.worker.trainLocal({ ...LOCAL_TRAINING, ...plan }, budget)
  }

  /** Scores items for this user with the on-device model, in input order. */
  async score(items: readonly string[]): Promise<Float32Array> {
    this.#assertOpen()
    return this.#deps.worker.score(items)
  }

  // ---- Personalization -----------------------------------------------------------------------

  /** True while personalization is paused (`pause()`), across reloads. */
  get paused(): boolean {
    return this.#paused
  }

  /**
   * Ranks `candidates` (item ids, or `{ item, features }`) for this user on the device: the
   * ordered items, each with a score, a short true reason and its propensity. One message to the
   * worker; it never waits for training. Paused or without a model, the app's order is kept.
   * The worker answers with transferred columns (`RankColumns`) and the items are built here:
   * a structured clone of n objects was half the time of a 1,000-candidate ranking.
   *
   * ```ts
   * const { items } = await hearth.rank(['a1', 'a2', 'a3'], { surface: 'home' })
   * items[0].reason.text // "Because you liked a7"
   * ```
   */
  async rank(candidates: readonly RankCandidate[], context?: EventContext, options?: RankOptions): Promise<RankResult> {
    this.#assertOpen()
    if (this.#paused) {
      const reason = appOrderReason('paused')
      return { decision: null, modelVersion: this.#modelVersion, exploration: 'none', items: toCandidates(candidates).map(({ item }) => ({ item, score: 0, reason, propensity: 1 })) }
    }
    // A copy of the array: the columns index it, and the app may change its own meanwhile.
    const snapshot = Array.isArray(candidates) ? candidates.slice() : candidates
    return unpackRanking(await this.#deps.worker.rankColumns(snapshot, context, options), snapshot)
  }

  /** Pauses personalization: `rank()` returns the app's order and `record()` stores nothing. */
  async pause(): Promise<void> {
    this.#assertOpen()
    await this.flush()
    await this.#setPaused(true)
  }

  /** Resumes personalization after `pause()`. */
  async resume(): Promise<void> {
    this.#assertOpen()
    await this.#setPaused(false)
  }

  /** False when the app started Hearth with `federated: false`: no round is ever joined, whatever the user chooses. */
  get federationAvailable(): boolean {
    return this.#options.federated
  }

  /** True while this device may join federated rounds: the app allows it and the user has not turned it off. */
  get federated(): boolean {
    return this.#options.federated && this.#userFederated
  }

  /**
   * Turns federated learning on or off for this device, across reloads. Off: the round socket
   * closes at once (a round in progress is abandoned, nothing more is sent) while training on
   * the device and ranking carry on.
   */
  async setFederated(federated: boolean): Promise<void> {
    this.#assertOpen()
    const settings = await this.#deps.worker.setFederated(federated)
    await this.#applyFederated(settings.federated !== false)
  }

  /** The consent categories of the app's sensitive features (`personalization.sensitiveFeatures`), sorted. */
  get consentCategories(): readonly string[] {
    return [...new Set(Object.values(this.#options.personalization?.sensitiveFeatures ?? {}))].sort()
  }

  /** Grants or revokes consent to a category of sensitive features (`personalization.sensitiveFeatures`). */
  async setConsent(category: string, granted: boolean): Promise<PersonalizationSettings> {
    this.#assertOpen()
    await this.flush()
    const settings = await this.#deps.worker.setConsent(category, granted)
    this.#emit('consent', { category, granted })
    return settings
  }

  /** Personalization settings: paused, consent per category. */
  async settings(): Promise<PersonalizationSettings> {
    this.#assertOpen()
    return this.#deps.worker.settings()
  }

  /** The logged ranking decisions, newest first, for the preferences panel. */
  async decisions(limit?: number): Promise<DecisionRecord[]> {
    this.#assertOpen()
    return this.#deps.worker.decisions(limit)
  }

  /** IPS / SNIPS estimates of another model or exploration policy from the decision log. */
  async offPolicyEstimate(request?: OffPolicyRequest): Promise<OffPolicyReport> {
    this.#assertOpen()
    await this.flush()
    return this.#deps.worker.offPolicyEstimate(request)
  }

  /** Everything stored for the user on this device, as JSON-ready data (docs/data-export.md). */
  async exportData(): Promise<HearthExport> {
    this.#assertOpen()
    await this.flush()
    return this.#deps.worker.exportData()
  }

  /**
   * Deletes the user's data on this device: events (also those not yet written), decisions,
   * settings and consent, the local model and every personal parameter, and in browsers Hearth's
   * caches and service worker (the next `init()` registers it again). Settings return to their
   * defaults, so a paused device resumes (a `personalization` event says so).
   */
  async deleteData(): Promise<void> {
    this.#assertOpen()
    this.#buffer.discard()
    await this.#buffer.flush().catch(() => undefined)
    await this.#deps.worker.deleteData()
    await this.#deps.offline?.remove()
    this.#scheduler?.reset()
    const wasPaused = this.#paused
    this.#paused = false
    this.#emit('delete', { at: Date.now() })
    if (wasPaused) this.#emit('personalization', { paused: false })
    await this.#applyFederated(true)
  }

  async #applyFederated(userFederated: boolean): Promise<void> {
    const before = this.federated
    this.#userFederated = userFederated
    if (this.federated === before) return
    if (this.federated) this.#joinRounds()
    else await this.#leaveRounds()
    this.#emit('federated', { federated: this.federated })
  }

  async #setPaused(paused: boolean): Promise<void> {
    const settings = await this.#deps.worker.setPaused(paused)
    const changed = settings.paused !== this.#paused
    this.#paused = settings.paused
    if (changed) this.#emit('personalization', { paused: settings.paused })
  }

  addEventListener<K extends HearthEventName>(type: K, listener: (event: CustomEvent<HearthEventMap[K]>) => void): void {
    this.#events.addEventListener(type, listener as EventListener)
  }

  removeEventListener<K extends HearthEventName>(type: K, listener: (event: CustomEvent<HearthEventMap[K]>) => void): void {
    this.#events.removeEventListener(type, listener as EventListener)
  }

  /** Stops taking part in rounds, writes pending events and shuts the worker down. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#stopNetwork?.()
    // The socket closes synchronously, before anything below waits.
    const leaving = this.#leaveRounds()
    try {
      await this.#scheduler?.stop()
      await leaving
      await this.#buffer.flush()
      await this.#adopting
    } finally {
      await this.#deps.worker.close()
      this.#deps.dispose?.()
    }
  }

  #joinRounds(): void {
    const socket = (this.#socket = new RoundSocket({
      aggregatorUrl: this.#options.aggregatorUrl,
      appKey: this.#options.appKey,
      model: this.#options.model,
      createSocket: this.#deps.createSocket,
      modelVersion: () => this.#modelVersion,
      onMessage: (message) => this.#participant?.handle(message),
      onError: (error) => this.#emit('error', { error }),
      onDisconnect: () => this.#connectionLost(socket),
    }))
    this.#participant = this.#newParticipant(socket)
    socket.start()
  }

  /**
   * A participant lives as long as one connection: once that one is gone (dropped, network
   * change, federated off), nothing it still holds (a late delta, a masked input) can go out on
   * its successor.
   */
  #newParticipant(socket: RoundSocket): RoundParticipant {
    this.#roundInProgress = null
    const participant: RoundParticipant = new RoundParticipant({
      model: this.#options.model,
      worker: this.#deps.worker,
      fetcher: this.#fetcher,
      sendBinary: (bytes) => socket.sendBinary(bytes),
      sendMessage: (message) => socket.sendMessage(message),
      adoptVersion: (version) => this.#adopt(version),
      onRound: (detail) => {
        if (participant !== this.#participant) return
        if (detail.status === 'training') this.#roundInProgress = detail.roundId
        else if (detail.roundId === this.#roundInProgress) this.#roundInProgress = null
        this.#emit('round', detail)
      },
      onError: (error) => this.#emit('error', { error }),
    })
    return participant
  }

  /** The round socket dropped and will reconnect: the round in progress is skipped, a fresh participant waits. */
  #connectionLost(socket: RoundSocket): void {
    if (this.#closed || socket !== this.#socket) return
    const abandoned = this.#roundInProgress
    const lost = this.#participant
    this.#participant = this.#newParticipant(socket)
    void lost?.stop()
    if (abandoned !== null) this.#emit('round', { roundId: abandoned, status: 'skipped', reason: 'the connection to the aggregator was lost during the round' })
  }

  /**
   * The network came or went: the round session ends either way. Offline, a WebSocket can stay
   * "open" long after the link is gone, and what is sent into it arrives late or never; so the
   * round in progress is abandoned and reported skipped (its update is never sent on a later
   * connection) and a new session starts: at once when back online, with backoff while offline.
   */
  #restartRounds(): void {
    if (this.#closed || !this.federated) return
    const abandoned = this.#roundInProgress
    void this.#leaveRounds()
    if (abandoned !== null) this.#emit('round', { roundId: abandoned, status: 'skipped', reason: 'the network changed during the round' })
    this.#joinRounds()
  }

  async #leaveRounds(): Promise<void> {
    this.#socket?.stop()
    this.#socket = null
    const participant = this.#participant
    this.#participant = null
    await participant?.stop()
  }

  /** Installs `version` unless the device already holds it or a newer one; serialized. */
  #adopt(version: number): Promise<void> {
    const next = this.#adopting.then(async () => {
      if (this.#closed || (this.#modelVersion !== null && this.#modelVersion >= version)) return
      const { weights } = await this.#fetcher.weights(version)
      await this.#deps.worker.installGlobal(version, transfer(weights, [weights.buffer]))
      this.#modelVersion = version
      this.#emit('model', { version })
    })
    this.#adopting = next.catch(() => undefined)
    return next
  }

  #emit<K extends HearthEventName>(type: K, detail: HearthEventMap[K]): void {
    if (this.#closed) return
    this.#events.dispatchEvent(new CustomEvent(type, { detail }))
  }

  #assertOpen(): void {
    if (this.#closed) throw new HearthError('HEARTH_ERR_NOT_INITIALIZED', 'this Hearth instance is closed')
  }
}

function asHearthError(error: unknown): HearthError {
  return error instanceof HearthError ? error : new HearthError('HEARTH_ERR_INTERNAL', String(error), { cause: error })
}

/**
 * Creates a Hearth client from explicit dependencies. Browsers use `Hearth.init()`; Node
 * simulations call this with the worker core and the `ws` package.
 */
export function createHearth(options: HearthOptions, deps: HearthDependencies): Promise<Hearth> {
  return Hearth.create(options, deps)
}
