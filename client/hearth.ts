/**
 * `Hearth`, the object an app holds: records interactions, keeps the on-device model current
 * and takes part in federated rounds. Environment-neutral: the browser entry (`index.ts`)
 * supplies a comlink proxy of the worker and the page's WebSocket; Node simulations supply the
 * worker core itself and the `ws` package.
 */
import { HearthError } from '../protocol/errors.ts'
import { toInteractionEvent } from '../protocol/events.ts'
import type { InteractionInput } from '../protocol/events.ts'
import type { TrainingPlan } from '../protocol/messages.ts'
import type { DeviceStats, HearthWorkerApi, LocalTrainingResult, WorkerInfo } from '../worker/api.ts'
import type { HearthEventMap, HearthEventName } from './events.ts'
import { resolveOptions } from './options.ts'
import type { HearthOptions, ResolvedOptions } from './options.ts'
import { RecordBuffer } from './record-buffer.ts'
import { RoundParticipant } from './round-participant.ts'
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

  private constructor(options: ResolvedOptions, deps: HearthDependencies, info: WorkerInfo, fetcher: ModelFetcher) {
    this.#options = options
    this.#deps = deps
    this.#fetcher = fetcher
    this.#modelVersion = info.modelVersion
    this.#backend = info.backend
    this.#buffer = new RecordBuffer((events) => deps.worker.record(events), options.flushIntervalMs)
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
    })
    const hearth = new Hearth(resolved, deps, workerInfo, fetcher)
    if (resolved.federated) hearth.#joinRounds()
    else if (info.latestVersion > 0) await hearth.#adopt(info.latestVersion)
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
    this.#buffer.push(toInteractionEvent(input, Date.now()))
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

  /** Fine-tunes the model on this device's events now, off the main thread. */
  async train(plan: Partial<TrainingPlan> = {}): Promise<LocalTrainingResult> {
    this.#assertOpen()
    await this.flush()
    return this.#deps.worker.trainLocal({ ...LOCAL_TRAINING, ...plan })
  }

  /** Scores items for this user with the on-device model, in input order. */
  async score(items: readonly string[]): Promise<Float32Array> {
    this.#assertOpen()
    return this.#deps.worker.score(items)
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
    this.#socket?.stop()
    this.#socket = null
    try {
      await this.#participant?.stop()
      await this.#buffer.flush()
      await this.#adopting
    } finally {
      await this.#deps.worker.close()
      this.#deps.dispose?.()
    }
  }

  #joinRounds(): void {
    const participant = (this.#participant = new RoundParticipant({
      model: this.#options.model,
      worker: this.#deps.worker,
      fetcher: this.#fetcher,
      sendBinary: (bytes) => this.#socket?.sendBinary(bytes),
      adoptVersion: (version) => this.#adopt(version),
      onRound: (detail) => this.#emit('round', detail),
      onError: (error) => this.#emit('error', { error }),
    }))
    this.#socket = new RoundSocket({
      aggregatorUrl: this.#options.aggregatorUrl,
      appKey: this.#options.appKey,
      model: this.#options.model,
      createSocket: this.#deps.createSocket,
      modelVersion: () => this.#modelVersion,
      onMessage: (message) => participant.handle(message),
      onError: (error) => this.#emit('error', { error }),
    })
    this.#socket.start()
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

/**
 * Creates a Hearth client from explicit dependencies. Browsers use `Hearth.init()`; Node
 * simulations call this with the worker core and the `ws` package.
 */
export function createHearth(options: HearthOptions, deps: HearthDependencies): Promise<Hearth> {
  return Hearth.create(options, deps)
}
