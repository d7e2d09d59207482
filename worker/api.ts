/**
 * The contract between the page and the Hearth worker. Types only: the page imports this file
 * with `import type` (DESIGN.md §1) and talks to the worker through comlink; in Node the same
 * object is called directly, which is how hundreds of simulated devices run in one process.
 *
 * Every method takes and returns structured-cloneable data. Large vectors are `Float32Array`s
 * the caller may transfer. Failures are `HearthError`s; through comlink they arrive as an
 * `Error` that keeps `code` and `statusCode` (worker/expose.ts), which `errorFromBody` rebuilds.
 */
import type { EventKind, InteractionEvent } from '../protocol/events.ts'
import type { TrainingPlan } from '../protocol/messages.ts'
import type { ModelSpec } from '../protocol/model-spec.ts'

/** TensorFlow.js backends, in the order the worker tries them. */
export type BackendName = 'wasm' | 'webgl' | 'cpu'

export interface WorkerInitOptions {
  /** IndexedDB database name; one per app and origin. */
  readonly dbName: string
  /** The model this device trains. The worker creates local tensors from it. */
  readonly spec: ModelSpec
  /** Backends to try, in order. Defaults to `['wasm', 'cpu']`. */
  readonly backends?: readonly BackendName[]
  /** Base URL of the directory holding the tfjs `.wasm` files (ends with `/`). */
  readonly wasmBaseUrl?: string
}

export interface WorkerInfo {
  readonly backend: BackendName
  /** The global model version the device holds, or null before the first download. */
  readonly modelVersion: number | null
}

/** What the device holds, for the app and the preferences panel. Counts only, no content. */
export interface DeviceStats {
  readonly events: number
  readonly eventsByKind: Readonly<Record<EventKind, number>>
  readonly oldestEventAt: number | null
  readonly newestEventAt: number | null
  /** Events deleted so far to free storage space, oldest first (DESIGN.md §6: the panel says so). */
  readonly eventsDropped: number
  readonly modelVersion: number | null
  readonly lastTrainedAt: number | null
  readonly roundsJoined: number
}

/** A round's training request: start from the global weights of `baseVersion`. */
export interface RoundTrainingRequest {
  readonly roundId: number
  readonly baseVersion: number
  /** Federated weights of `baseVersion`, in spec order. */
  readonly globalWeights: Float32Array
  readonly plan: TrainingPlan
}

export interface RoundTrainingResult {
  readonly roundId: number
  /** Trained federated weights minus the global ones, in spec order. Local tensors never appear. */
  readonly delta: Float32Array
  readonly examples: number
  readonly loss: number
  readonly durationMs: number
}

export interface LocalTrainingResult {
  readonly examples: number
  readonly loss: number
  readonly durationMs: number
}

/** One round this device took part in, as the preferences panel shows it. */
export interface RoundParticipation {
  readonly roundId: number
  readonly model: string
  readonly at: number
  /** How many numbers the device sent (the length of its clipped, masked update). */
  readonly elements: number
}

/** The API the worker exposes. */
export interface HearthWorkerApi {
  /** Opens the store, starts a tfjs backend and restores the model. Call once, first. */
  init(options: WorkerInitOptions): Promise<WorkerInfo>
  /** Appends validated events to the store, in one transaction. */
  record(events: readonly InteractionEvent[]): Promise<void>
  stats(): Promise<DeviceStats>
  /** Adopts a published global version: stores it and re-fits the local part on local data. */
  installGlobal(version: number, weights: Float32Array): Promise<void>
  /** Fine-tunes the whole model on local events (no round). */
  trainLocal(plan: TrainingPlan): Promise<LocalTrainingResult>
  /** Trains from a round's global weights and returns the federated delta. */
  trainRound(request: RoundTrainingRequest): Promise<RoundTrainingResult>
  /** Remembers that this device's update for a round was accepted. */
  noteRound(entry: RoundParticipation): Promise<void>
  /** Scores items for this user with the current model, in input order. */
  score(items: readonly string[]): Promise<Float32Array>
  /** Releases tensors and closes the store. */
  close(): Promise<void>
}
