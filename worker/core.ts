/**
 * The worker core: `HearthWorkerApi` over a device store and a `hearth-mf-v1` model. It touches
 * no worker global, so the same object serves a module Web Worker (through `entry.ts`) and a
 * Node process simulating hundreds of devices (called directly).
 *
 * What the device holds (DESIGN.md §2–3):
 * - the last installed global version, kept pristine in the store;
 * - the serving weights the model scores with: that global, or the result of `trainLocal`
 *   fine-tuning it (dropped when a newer global is installed);
 * - the user vector (the model's local part), which never leaves the device.
 *
 * Calls that use the model run one at a time (`SerialQueue`); `record` and `stats` only touch
 * the store and go straight through. Ranking (`rank`) uses a second instance of the model, the
 * serving model, loaded with the serving weights and the user vector after every change, so
 * that a ranking never waits for, nor sees the middle of, a training run.
 */
import { HearthError } from '../protocol/errors.ts'
import { toEventContext } from '../protocol/events.ts'
import type { EventContext, InteractionEvent } from '../protocol/events.ts'
import type { DistributedPrivacyPlan, TrainingPlan } from '../protocol/messages.ts'
import { initTensor, localLayout } from '../protocol/model-spec.ts'
import type { ModelSpec, UniformSource } from '../protocol/model-spec.ts'
import type { HearthExport, PersonalizationSettings } from '../protocol/personal-data.ts'
import { toCandidates, unpackRanking } from '../protocol/ranking.ts'
import type { DecisionRecord, RankCandidate, RankColumns, RankOptions, RankResult } from '../protocol/ranking.ts'
import type { AdvertiseKeysMessage, PlanMessage, SecAggClientOutput, SecAggServerMessage } from '../protocol/secagg/messages.ts'
import type { QuantizationParams } from '../protocol/secagg/quantize.ts'
import type {
  BackendName,
  DeviceStats,
  HearthWorkerApi,
  LocalTrainingResult,
  OffPolicyReport,
  OffPolicyRequest,
  RoundParticipation,
  RoundTrainingRequest,
  RoundTrainingResult,
  TrainingBudget,
  WorkerInfo,
  WorkerInitOptions,
} from './api.ts'
import { DEFAULT_BACKENDS, startBackend } from './backend.ts'
import { buildTrainingData } from './model/examples.ts'
import type { TrainingData } from './model/examples.ts'
import { scoreItems } from './model/hearth-model.ts'
import type { HearthModel } from './model/hearth-model.ts'
import { encodeItems } from './model/item-encoding.ts'
import { assertMfSpec, MfModel, specFingerprint } from './model/mf-model.ts'
import { freshUniform, seededUniform } from './model/random.ts'
import { trainFromGlobal } from './model/round.ts'
import { DEFAULT_RECONSTRUCTION, fit, reconstructUser } from './model/train.ts'
import type { OptimizerKind, ReconstructionOptions, ReconstructionSettings } from './model/train.ts'
import { exportData } from './personalization/export.ts'
import { Personalization } from './personalization/personalization.ts'
import { estimateOffPolicy, loggedChoices } from './rank/off-policy.ts'
import { SecAggSessions } from './secagg/secagg-session.ts'
import { SerialQueue } from './serial.ts'
import type { DeviceStore, TunedWeights } from './store/device-store.ts'
import { IdbDeviceStore } from './store/idb-store.ts'
import { MemoryDeviceStore } from './store/memory-store.ts'
import { QuotaRecoveringStore } from './store/quota.ts'
import {
  checkEvents,
  checkInitOptions,
  checkItems,
  checkParticipation,
  checkPlan,
  checkRoundRequest,
  checkVersion,
  checkWeights,
  checkBudget,
  checkPersonalizationOptions,
  checkOffPolicyRequest,
  checkRankOptions,
} from './validate.ts'

/** Knobs of the core. The defaults suit browsers; tests and simulations override a few. */
export interface WorkerCoreOptions {
  /**
   * Opens the device store for `init({ dbName })`. Default: IndexedDB where it exists, else
   * memory (Node). The result is wrapped in `QuotaRecoveringStore` either way.
   */
  readonly openStore?: (dbName: string) => Promise<DeviceStore>
  /** Seed of weight initialization, shuffling and negative sampling. Default: random. */
  readonly seed?: number
  /**
   * Optimizer of a round's federated phase. Default `sgd`, the FedAvg client optimizer: with
   * the loss normalized per batch, plan learning rates around 0.5–2 suit it.
   */
  readonly roundOptimizer?: OptimizerKind
  /** Optimizer of `trainLocal`. Default `adam`, forgiving of the learning rate (0.01–0.1). */
  readonly localOptimizer?: OptimizerKind
  /** Sampled negatives per positive example. Default 4. */
  readonly negativesPerPositive?: number
  readonly reconstruction?: Partial<ReconstructionSettings>
  /** How long one tfjs backend may take to start. Default 15 s. */
  readonly backendTimeoutMs?: number
  /** Clock, in epoch milliseconds. */
  readonly now?: () => number
  /**
   * Builds the model of a spec: an app's own `HearthModel` (docs/personalization.md, "Bringing your own model"). Default: the
   * `hearth-mf-v1` model, which checks the spec first. Called twice per `init` (the training and
   * the serving instance).
   */
  readonly createModel?: ModelFactory
}

/** Builds a `HearthModel` for `spec`, its variables drawn from their initializers with `uniform`. */
export type ModelFactory = (spec: ModelSpec, uniform: UniformSource) => HearthModel

export const DEFAULT_NEGATIVES_PER_POSITIVE = 4
/** Events read per wanted example: an item usually has a few events (view, click, like...). */
const EVENTS_PER_EXAMPLE = 4

/** Everything `init` opened; gone after `close`. */
interface Session {
  readonly store: DeviceStore
  /** The model training runs on. */
  readonly model: HearthModel
  /** The model `rank` runs on: serving weights and the user vector, never mid-training. */
  readonly servingModel: HearthModel
  readonly fingerprint: string
  readonly backend: BackendName
  /** The installed global version, or null before the first. */
  version: number | null
  /** The installed global weights (kept in memory: `deleteData` reverts to them). */
  global: Float32Array | null
  /** The federated weights `score` uses: the global, or `tuned.weights`. */
  serving: Float32Array
  tuned: TunedWeights | null
  /** The local part was fitted on the user's data (else its personal term is noise). */
  fitted: boolean
  readonly personalization: Personalization
}

async function defaultStore(dbName: string): Promise<DeviceStore> {
  return typeof indexedDB === 'undefined' ? new MemoryDeviceStore() : IdbDeviceStore.open(dbName)
}

class WorkerCore implements HearthWorkerApi {
  readonly #options: WorkerCoreOptions
  readonly #now: () => number
  readonly #uniform: UniformSource
  readonly #negatives: number
  readonly #reconstruction: ReconstructionSettings
  readonly #queue = new SerialQueue()
  /** Secure aggregation needs no model or store: it runs beside the queue, never behind training. */
  readonly #secagg = new SecAggSessions()
  /** Store calls outside the queue, awaited by `close`. */
  readonly #inflight = new Set<Promise<unknown>>()
  #session: Session | null = null
  #opening = false

  constructor(options: WorkerCoreOptions) {
    this.#options = options
    this.#now = options.now ?? Date.now
    this.#uniform = options.seed === undefined ? freshUniform() : seededUniform(options.seed)
    this.#negatives = options.negativesPerPositive ?? DEFAULT_NEGATIVES_PER_POSITIVE
    this.#reconstruction = { ...DEFAULT_RECONSTRUCTION, ...options.reconstruction }
    const { steps, learningRate, maxExamples } = this.#reconstruction
    if (!Number.isInteger(this.#negatives) || this.#negatives < 0 || this.#negatives > 100) {
      throw new RangeError(`options.negativesPerPositive must be an integer in [0, 100], got ${this.#negatives}`)
    }
    if (!Number.isInteger(steps) || steps < 0) throw new RangeError(`options.reconstruction.steps must be a non-negative integer, got ${steps}`)
    if (!(learningRate > 0)) throw new RangeError(`options.reconstruction.learningRate must be positive, got ${learningRate}`)
    if (!Number.isInteger(maxExamples) || maxExamples < 1) throw new RangeError(`options.reconstruction.maxExamples must be a positive integer, got ${maxExamples}`)
  }

  async init(options: WorkerInitOptions): Promise<WorkerInfo> {
    checkInitOptions(options)
    if (options.personalization !== undefined) checkPersonalizationOptions(options.personalization, 'options.personalization')
    if (this.#session !== null || this.#opening) {
      throw new HearthError('HEARTH_ERR_INVALID_ARGUMENT', 'init() was already called; close() first')
    }
    this.#opening = true
    return this.#queue.run(async () => {
      try {
        this.#session = await this.#open(options)
        return { backend: this.#session.backend, modelVersion: this.#session.version }
      } finally {
        this.#opening = false
      }
    })
  }

  async record(events: readonly InteractionEvent[]): Promise<void> {
    const { store, personalization } = this.#live()
    // Paused: nothing is stored. Sensitive features without consent are dropped before storage.
    const admitted = personalization.admit(checkEvents(events, this.#now()))
    return this.#track(
      (async () => {
        if (admitted.length === 0) return
        await store.appendEvents(admitted)
        await personalization.recorded(admitted)
      })(),
    )
  }

  async stats(): Promise<DeviceStats> {
    const session = this.#live()
    const { store } = session
    return this.#track(
      (async () => {
        await session.personalization.flush()
        const [summary, lastTrainedAt, eventsDropped, eventsExpired, roundsJoined, decisions] = await Promise.all([
          store.summarizeEvents(),
          store.getMeta('lastTrainedAt'),
          store.getMeta('eventsDropped'),
          store.getMeta('eventsExpired'),
          store.countRounds(),
          store.countDecisions(),
        ])
        return {
          events: summary.count,
          eventsByKind: summary.byKind,
          oldestEventAt: summary.oldestAt,
          newestEventAt: summary.newestAt,
          eventsDropped: eventsDropped ?? 0,
          eventsExpired: eventsExpired ?? 0,
          decisions,
          modelVersion: session.version,
          lastTrainedAt,
          roundsJoined,
        }
      })(),
    )
  }

  async countEvents(since: number): Promise<number> {
    const { store } = this.#live()
    if (typeof since !== 'number' || Number.isNaN(since)) throw new HearthError('HEARTH_ERR_INVALID_ARGUMENT', 'since must be a time in epoch milliseconds')
    return this.#track(store.countEvents(since))
  }

  async rounds(): Promise<RoundParticipation[]> {
    return this.#track(this.#live().store.listRounds())
  }

  async installGlobal(version: number, weights: Float32Array): Promise<void> {
    const { model } = this.#live()
    checkVersion(version, 'version')
    checkWeights(model.spec, weights, 'weights')
    const global = weights.slice()
    return this.#queue.run(async () => {
      const session = this.#live()
      const { store, model, fingerprint } = session
      await store.saveGlobal({ fingerprint, version, weights: global })
      model.setFederated(global)
      session.version = version
      session.global = global
      session.serving = global
      session.tuned = null
      // Federated Reconstruction: the old user vector was fit to other item weights.
      const data = await this.#trainingData(session, this.#reconstruction.maxExamples)
      await reconstructUser(model, data, this.#reconstructionOptions())
      session.fitted = data.examples.length > 0
      await store.saveLocal({ fingerprint, user: await model.readLocal(), tuned: null, fitted: session.fitted })
      this.#syncServing(session)
    })
  }

  async trainLocal(plan: TrainingPlan, budget?: TrainingBudget): Promise<LocalTrainingResult> {
    this.#live()
    checkPlan(plan, 'plan')
    if (budget !== undefined) checkBudget(budget, 'budget')
    return this.#queue.run(async () => {
      const session = this.#live()
      const { store, model, fingerprint } = session
      const started = this.#now()
      const data = await this.#trainingData(session, plan.maxExamples)
      const user = await model.readLocal()
      let result
      try {
        result = await fit(model, data, {
          ...plan,
          optimizer: this.#options.localOptimizer ?? 'adam',
          trainable: 'all',
          negativesPerPositive: this.#negatives,
          uniform: this.#uniform,
          ...(budget === undefined
            ? {}
            : {
                budget: {
                  now: this.#now,
                  ...(budget.maxMs === undefined ? {} : { deadline: started + budget.maxMs }),
                  ...(budget.maxTensorBytes === undefined ? {} : { maxTensorBytes: budget.maxTensorBytes }),
                },
              }),
        })
      } catch (error) {
        this.#restore(session, user)
        throw error
      }
      if (result.steps > 0) {
        const tuned = { baseVersion: session.version, weights: await model.readFederated() }
        session.fitted = true
        await store.saveLocal({ fingerprint, user: await model.readLocal(), tuned, fitted: true })
        await store.setMeta('lastTrainedAt', this.#now())
        session.serving = tuned.weights
        session.tuned = tuned
        this.#syncServing(session)
      }
      return { examples: data.examples.length, loss: result.loss, durationMs: this.#now() - started, steps: result.steps, stoppedBy: result.stoppedBy }
    })
  }

  async trainRound(request: RoundTrainingRequest): Promise<RoundTrainingResult> {
    const { model } = this.#live()
    checkRoundRequest(model.spec, request)
    const global = request.globalWeights.slice()
    const plan = request.plan
    return this.#queue.run(async () => {
      const session = this.#live()
      const { store, model, fingerprint } = session
      const started = this.#now()
      const data = await this.#trainingData(session, plan.maxExamples)
      const userBefore = await model.readLocal()
      let outcome
      let user
      try {
        outcome = await trainFromGlobal(model, global, data, {
          plan,
          optimizer: this.#options.roundOptimizer ?? 'sgd',
          negativesPerPositive: this.#negatives,
          reconstruction: this.#reconstruction,
          uniform: this.#uniform,
        })
        user = await model.readLocal()
      } catch (error) {
        this.#restore(session, userBefore)
        throw error
      }
      // The trained federated weights are this device's contribution, not a new global: serve
      // what was served before, and keep only the reconstructed user vector.
      model.setFederated(session.serving)
      if (data.examples.length > 0) {
        session.fitted = true
        await store.saveLocal({ fingerprint, user, tuned: session.tuned, fitted: true })
        await store.setMeta('lastTrainedAt', this.#now())
        this.#syncServing(session)
      }
      return {
        roundId: request.roundId,
        delta: outcome.delta,
        examples: data.examples.length,
        loss: outcome.loss,
        durationMs: this.#now() - started,
      }
    })
  }

  async noteRound(entry: RoundParticipation): Promise<void> {
    const { store } = this.#live()
    checkParticipation(entry)
    return this.#track(store.addRound({ roundId: entry.roundId, model: entry.model, at: entry.at, elements: entry.elements }))
  }

  async secaggBegin(plan: PlanMessage, quantization: QuantizationParams, noise?: DistributedPrivacyPlan): Promise<AdvertiseKeysMessage> {
    return this.#secagg.begin(plan, quantization, noise)
  }

  async secaggStep(message: SecAggServerMessage, delta?: Float32Array): Promise<SecAggClientOutput | undefined> {
    return this.#secagg.step(message, delta)
  }

  async secaggAbort(roundId: number): Promise<void> {
    this.#secagg.abort(roundId)
  }

  async score(items: readonly string[]): Promise<Float32Array> {
    this.#live()
    checkItems(items)
    return this.#queue.run(async () => {
      const { model, personalization } = this.#live()
      return scoreItems(model, encodeItems(items.map((item) => ({ item })), personalization.encoding))
    })
  }

  async close(): Promise<void> {
    return this.#queue.run(async () => {
      const session = this.#session
      if (session === null) return
      this.#session = null
      await Promise.allSettled([...this.#inflight])
      await session.personalization.flush()
      session.personalization.dispose()
      session.model.dispose()
      session.servingModel.dispose()
      await session.store.close()
    })
  }

  // ---- Personalization: ranking, decisions, consent, export and delete ------------------------

  async rank(candidates: readonly RankCandidate[], context?: EventContext, options: RankOptions = {}): Promise<RankResult> {
    return unpackRanking(await this.rankColumns(candidates, context, options), candidates)
  }

  async rankColumns(candidates: readonly RankCandidate[], context?: EventContext, options: RankOptions = {}): Promise<RankColumns> {
    const session = this.#live()
    const checked = toCandidates(candidates)
    const ctx = context === undefined ? undefined : toEventContext(context, 'context')
    const opts = checkRankOptions(options)
    return this.#track(
      session.personalization.rank(checked, ctx, opts, {
        hasModel: session.version !== null || session.tuned !== null,
        fitted: session.fitted,
        modelVersion: session.version,
      }),
    )
  }

  async decisions(limit = Number.MAX_SAFE_INTEGER): Promise<DecisionRecord[]> {
    const { store, personalization } = this.#live()
    if (typeof limit !== 'number' || !(limit >= 0)) throw new HearthError('HEARTH_ERR_INVALID_ARGUMENT', 'limit must be a non-negative number')
    return this.#track(personalization.flush().then(() => store.recentDecisions(limit)))
  }

  async offPolicyEstimate(request: OffPolicyRequest = {}): Promise<OffPolicyReport> {
    const { model: live } = this.#live()
    checkOffPolicyRequest(live.spec, request)
    const weights = request.weights?.slice()
    const policy = request.exploration ?? { method: 'none' as const }
    const slots = request.slots ?? 1
    return this.#queue.run(async () => {
      const session = this.#live()
      const { store, model, personalization } = session
      await personalization.flush()
      const decisions = await store.recentDecisions(Number.MAX_SAFE_INTEGER)
      const local = await model.readLocal()
      const scores = new Map<string, Float32Array>()
      try {
        if (weights !== undefined) {
          // Federated Reconstruction: the user vector of the model under evaluation.
          model.setFederated(weights)
          await reconstructUser(model, await this.#trainingData(session, this.#reconstruction.maxExamples), this.#reconstructionOptions())
        }
        for (const decision of decisions) scores.set(decision.id, await scoreItems(model, encodeItems(decision.candidates, personalization.encoding)))
      } finally {
        this.#restore(session, local)
      }
      const choices = loggedChoices(decisions, (d) => scores.get(d.id) ?? new Float32Array(d.candidates.length), policy, slots)
      return { ...estimateOffPolicy(choices), decisions: decisions.length, slots }
    })
  }

  async settings(): Promise<PersonalizationSettings> {
    return this.#live().personalization.settings
  }

  async setConsent(category: string, granted: boolean): Promise<PersonalizationSettings> {
    const { personalization } = this.#live()
    return this.#track(personalization.setConsent(category, granted))
  }

  async setPaused(paused: boolean): Promise<PersonalizationSettings> {
    const { personalization } = this.#live()
    return this.#track(personalization.setPaused(paused))
  }

  async setFederated(federated: boolean): Promise<PersonalizationSettings> {
    const { personalization } = this.#live()
    return this.#track(personalization.setFederated(federated))
  }

  async exportData(): Promise<HearthExport> {
    this.#live()
    return this.#queue.run(async () => {
      const session = this.#live()
      await session.personalization.flush()
      await Promise.allSettled([...this.#inflight])
      return exportData(
        session.store,
        session.personalization.settings,
        { spec: session.model.spec, version: session.version, fineTunedFrom: session.tuned === null ? null : session.tuned.baseVersion, local: await session.model.readLocal() },
        this.#now(),
      )
    })
  }

  async deleteData(): Promise<void> {
    this.#live()
    return this.#queue.run(async () => {
      const session = this.#live()
      await Promise.allSettled([...this.#inflight])
      await session.personalization.flush()
      await session.store.clear()
      // Personal parameters go too: local fine-tuning, and the user vector back to its initializer.
      session.tuned = null
      session.serving = session.global ?? (await session.model.readFederated())
      session.model.setFederated(session.serving)
      session.model.setLocal(this.#freshLocal(session.model.spec, session.model.localLength))
      session.fitted = false
      session.personalization.reset()
      this.#syncServing(session)
    })
  }

  /** A local vector drawn from the spec's initializers, as a new device starts with. */
  #freshLocal(spec: ModelSpec, length: number): Float32Array {
    const out = new Float32Array(length)
    for (const { tensor, offset, size } of localLayout(spec)) initTensor(tensor, out.subarray(offset, offset + size), this.#uniform)
    return out
  }

  async #open(options: WorkerInitOptions): Promise<Session> {
    const spec: ModelSpec = options.spec
    const createModel = this.#options.createModel
    if (createModel === undefined) assertMfSpec(spec) // before anything is started or opened
    // The backend first: a tensor made before it is chosen would make tfjs pick one itself.
    const backend = await startBackend(options.backends ?? DEFAULT_BACKENDS, {
      ...(options.wasmBaseUrl === undefined ? {} : { wasmBaseUrl: options.wasmBaseUrl }),
      ...(this.#options.backendTimeoutMs === undefined ? {} : { timeoutMs: this.#options.backendTimeoutMs }),
    })
    const build: ModelFactory = createModel ?? ((s, uniform) => MfModel.create(s, uniform))
    const model = build(spec, this.#uniform)
    let servingModel: HearthModel | undefined
    let store: DeviceStore | undefined
    try {
      servingModel = build(spec, this.#uniform)
      store = new QuotaRecoveringStore(await (this.#options.openStore ?? defaultStore)(options.dbName))
      const personalization = await Personalization.open(store, servingModel, options.personalization ?? {}, this.#uniform, this.#now)
      const fingerprint = specFingerprint(spec)
      const session: Session = {
        store,
        model,
        servingModel,
        fingerprint,
        backend,
        version: null,
        global: null,
        serving: new Float32Array(0),
        tuned: null,
        fitted: false,
        personalization,
      }
      await this.#restorePersisted(session)
      await personalization.enforceRetention(true)
      return session
    } catch (error) {
      model.dispose()
      servingModel?.dispose()
      await store?.close()
      throw error
    }
  }

  /** Loads what the store holds for this spec; anything saved for another spec is ignored. */
  async #restorePersisted(session: Session): Promise<void> {
    const { store, model, fingerprint } = session
    const [global, local] = await Promise.all([store.loadGlobal(), store.loadLocal()])
    if (global !== null && global.fingerprint === fingerprint && global.weights.length === model.federatedLength) {
      model.setFederated(global.weights)
      session.version = global.version
      session.global = global.weights
    }
    if (local !== null && local.fingerprint === fingerprint && local.user.length === model.localLength) {
      model.setLocal(local.user)
      // Stores written before `fitted` existed held a vector only once training had run.
      session.fitted = local.fitted ?? true
      const tuned = local.tuned
      if (tuned !== null && tuned.baseVersion === session.version && tuned.weights.length === model.federatedLength) {
        model.setFederated(tuned.weights)
        session.tuned = tuned
      }
    }
    session.serving = await model.readFederated()
    this.#syncServing(session)
  }

  /** Puts the serving weights and `user` back after a failed training. */
  #restore(session: Session, user: Float32Array): void {
    session.model.setFederated(session.serving)
    session.model.setLocal(user)
  }

  /** Loads the serving weights and the training model's local values into the serving model. */
  #syncServing(session: Session): void {
    session.servingModel.setFederated(session.serving)
    // Local values are read back synchronously: `dataSync` of a few numbers, no training queued.
    session.servingModel.setLocal(new Float32Array(session.model.localVariables.flatMap((v) => Array.from(v.dataSync()))))
    session.personalization.servingChanged()
  }

  /** The user's training data: recent events, and the items seen in rankings as negatives. */
  async #trainingData(session: Session, maxExamples: number): Promise<TrainingData> {
    const events = await session.store.recentEvents(maxExamples * EVENTS_PER_EXAMPLE)
    const { personalization } = session
    return buildTrainingData(events, personalization.seenItems(), personalization.encoding, maxExamples)
  }

  #reconstructionOptions(): ReconstructionOptions {
    const { steps, learningRate, maxExamples } = this.#reconstruction
    return { steps, learningRate, maxExamples, negativesPerPositive: this.#negatives, uniform: this.#uniform }
  }

  #live(): Session {
    if (this.#session === null) throw new HearthError('HEARTH_ERR_NOT_INITIALIZED', 'call init() first')
    return this.#session
  }

  #track<T>(promise: Promise<T>): Promise<T> {
    this.#inflight.add(promise)
    const forget = (): void => void this.#inflight.delete(promise)
    promise.then(forget, forget)
    return promise
  }
}

/**
 * Creates the worker core. In a browser `entry.ts` exposes it with comlink; in Node call it
 * directly. The tfjs engine is shared by every core of a realm (see `backend.ts`).
 */
export function createWorkerCore(options: WorkerCoreOptions = {}): HearthWorkerApi {
  return new WorkerCore(options)
}
