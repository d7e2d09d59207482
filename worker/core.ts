/**
 * The worker core: `HearthWorkerApi` over a device store and a `hearth-mf-v1` model. It touches
 * no worker global, so the same object serves a module Web Worker (through `entry.ts`) and a
 * Node process simulating hundreds of devices (called directly).
 *
 * What the device holds (DESIGN.md §2–3):
 * - the last installed global version, kept pristine in the store;
 * - the serving weights the model scores with: that global, or the result of `trainLocal`
 *   fine-tuning it (dropped when a newer global is installed);
 * - the user vector, which never leaves the device.
 *
 * Calls that use the model run one at a time (`SerialQueue`); `record` and `stats` only touch
 * the store and go straight through.
 */
import { HearthError } from '../protocol/errors.ts'
import type { InteractionEvent } from '../protocol/events.ts'
import type { TrainingPlan } from '../protocol/messages.ts'
import type { ModelSpec, UniformSource } from '../protocol/model-spec.ts'
import type {
  BackendName,
  DeviceStats,
  HearthWorkerApi,
  LocalTrainingResult,
  RoundParticipation,
  RoundTrainingRequest,
  RoundTrainingResult,
  WorkerInfo,
  WorkerInitOptions,
} from './api.ts'
import { DEFAULT_BACKENDS, startBackend } from './backend.ts'
import { eventsToExamples } from './model/examples.ts'
import type { Example } from './model/examples.ts'
import { itemBuckets } from './model/hash.ts'
import { assertMfSpec, MfModel, specFingerprint } from './model/mf-model.ts'
import { freshUniform, seededUniform } from './model/random.ts'
import { trainFromGlobal } from './model/round.ts'
import { fit, reconstructUser } from './model/train.ts'
import type { OptimizerKind, ReconstructionOptions } from './model/train.ts'
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
} from './validate.ts'

/** Settings of the reconstruction of the user vector (`reconstructUser`). */
export interface ReconstructionSettings {
  /** Full-batch Adam steps on the user vector. */
  readonly steps: number
  readonly learningRate: number
  /** Most recent items used when installing a global version. */
  readonly maxExamples: number
}

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
}

export const DEFAULT_RECONSTRUCTION: ReconstructionSettings = { steps: 30, learningRate: 0.05, maxExamples: 1_000 }
export const DEFAULT_NEGATIVES_PER_POSITIVE = 4
/** Events read per wanted example: an item usually has a few events (view, click, like...). */
const EVENTS_PER_EXAMPLE = 4

/** Everything `init` opened; gone after `close`. */
interface Session {
  readonly store: DeviceStore
  readonly model: MfModel
  readonly fingerprint: string
  readonly backend: BackendName
  /** The installed global version, or null before the first. */
  version: number | null
  /** The federated weights `score` uses: the global, or `tuned.weights`. */
  serving: Float32Array
  tuned: TunedWeights | null
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
    const { store } = this.#live()
    const checked = checkEvents(events, this.#now())
    return this.#track(store.appendEvents(checked))
  }

  async stats(): Promise<DeviceStats> {
    const session = this.#live()
    const { store } = session
    return this.#track(
      (async () => {
        const [summary, lastTrainedAt, eventsDropped, roundsJoined] = await Promise.all([
          store.summarizeEvents(),
          store.getMeta('lastTrainedAt'),
          store.getMeta('eventsDropped'),
          store.countRounds(),
        ])
        return {
          events: summary.count,
          eventsByKind: summary.byKind,
          oldestEventAt: summary.oldestAt,
          newestEventAt: summary.newestAt,
          eventsDropped: eventsDropped ?? 0,
          modelVersion: session.version,
          lastTrainedAt,
          roundsJoined,
        }
      })(),
    )
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
      session.serving = global
      session.tuned = null
      // Federated Reconstruction: the old user vector was fit to other item weights.
      const examples = await this.#examples(session, this.#reconstruction.maxExamples)
      await reconstructUser(model, examples, this.#reconstructionOptions())
      await store.saveLocal({ fingerprint, user: await model.readUser(), tuned: null })
    })
  }

  async trainLocal(plan: TrainingPlan): Promise<LocalTrainingResult> {
    this.#live()
    checkPlan(plan, 'plan')
    return this.#queue.run(async () => {
      const session = this.#live()
      const { store, model, fingerprint } = session
      const started = this.#now()
      const examples = await this.#examples(session, plan.maxExamples)
      const user = await model.readUser()
      let result
      try {
        result = await fit(model, examples, {
          ...plan,
          optimizer: this.#options.localOptimizer ?? 'adam',
          trainable: 'all',
          negativesPerPositive: this.#negatives,
          uniform: this.#uniform,
        })
      } catch (error) {
        this.#restore(session, user)
        throw error
      }
      if (result.steps > 0) {
        const tuned = { baseVersion: session.version, weights: await model.readFederated() }
        await store.saveLocal({ fingerprint, user: await model.readUser(), tuned })
        await store.setMeta('lastTrainedAt', this.#now())
        session.serving = tuned.weights
        session.tuned = tuned
      }
      return { examples: examples.length, loss: result.loss, durationMs: this.#now() - started }
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
      const examples = await this.#examples(session, plan.maxExamples)
      const userBefore = await model.readUser()
      let outcome
      let user
      try {
        outcome = await trainFromGlobal(model, global, examples, {
          plan,
          optimizer: this.#options.roundOptimizer ?? 'sgd',
          negativesPerPositive: this.#negatives,
          reconstruction: this.#reconstruction,
          uniform: this.#uniform,
        })
        user = await model.readUser()
      } catch (error) {
        this.#restore(session, userBefore)
        throw error
      }
      // The trained federated weights are this device's contribution, not a new global: serve
      // what was served before, and keep only the reconstructed user vector.
      model.setFederated(session.serving)
      if (examples.length > 0) {
        await store.saveLocal({ fingerprint, user, tuned: session.tuned })
        await store.setMeta('lastTrainedAt', this.#now())
      }
      return {
        roundId: request.roundId,
        delta: outcome.delta,
        examples: examples.length,
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

  async score(items: readonly string[]): Promise<Float32Array> {
    this.#live()
    checkItems(items)
    return this.#queue.run(async () => {
      const { model } = this.#live()
      return model.score(itemBuckets(items, model.buckets))
    })
  }

  async close(): Promise<void> {
    return this.#queue.run(async () => {
      const session = this.#session
      if (session === null) return
      this.#session = null
      await Promise.allSettled([...this.#inflight])
      session.model.dispose()
      await session.store.close()
    })
  }

  async #open(options: WorkerInitOptions): Promise<Session> {
    const spec: ModelSpec = options.spec
    assertMfSpec(spec) // before anything is started or opened
    // The backend first: a tensor made before it is chosen would make tfjs pick one itself.
    const backend = await startBackend(options.backends ?? DEFAULT_BACKENDS, {
      ...(options.wasmBaseUrl === undefined ? {} : { wasmBaseUrl: options.wasmBaseUrl }),
      ...(this.#options.backendTimeoutMs === undefined ? {} : { timeoutMs: this.#options.backendTimeoutMs }),
    })
    const model = MfModel.create(spec, this.#uniform)
    let store: DeviceStore | undefined
    try {
      store = new QuotaRecoveringStore(await (this.#options.openStore ?? defaultStore)(options.dbName))
      const fingerprint = specFingerprint(spec)
      const session: Session = { store, model, fingerprint, backend, version: null, serving: new Float32Array(0), tuned: null }
      await this.#restorePersisted(session)
      return session
    } catch (error) {
      model.dispose()
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
    }
    if (local !== null && local.fingerprint === fingerprint && local.user.length === model.dim) {
      model.setUser(local.user)
      const tuned = local.tuned
      if (tuned !== null && tuned.baseVersion === session.version && tuned.weights.length === model.federatedLength) {
        model.setFederated(tuned.weights)
        session.tuned = tuned
      }
    }
    session.serving = await model.readFederated()
  }

  /** Puts the serving weights and `user` back after a failed training. */
  #restore(session: Session, user: Float32Array): void {
    session.model.setFederated(session.serving)
    session.model.setUser(user)
  }

  async #examples(session: Session, maxExamples: number): Promise<Example[]> {
    const events = await session.store.recentEvents(maxExamples * EVENTS_PER_EXAMPLE)
    return eventsToExamples(events, session.model.buckets, maxExamples)
  }

  #reconstructionOptions(): ReconstructionOptions {
    const { steps, learningRate } = this.#reconstruction
    return { steps, learningRate, negativesPerPositive: this.#negatives, uniform: this.#uniform }
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
