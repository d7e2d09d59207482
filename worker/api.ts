/**
 * The contract between the page and the Hearth worker. Types only: the page imports this file
 * with `import type` (DESIGN.md §1) and talks to the worker through comlink; in Node the same
 * object is called directly, which is how hundreds of simulated devices run in one process.
 *
 * Every method takes and returns structured-cloneable data. Large vectors are `Float32Array`s
 * the caller may transfer. Failures are `HearthError`s; through comlink they arrive as an
 * `Error` that keeps `code` and `statusCode` (worker/expose.ts), which `errorFromBody` rebuilds.
 */
import type { EventContext, EventKind, InteractionEvent } from '../protocol/events.ts'
import type { DistributedPrivacyPlan, TrainingPlan } from '../protocol/messages.ts'
import type { ModelSpec } from '../protocol/model-spec.ts'
import type { HearthExport, PersonalizationSettings } from '../protocol/personal-data.ts'
import type { DecisionRecord, ExplorationConfig, RankCandidate, RankColumns, RankOptions, RankResult } from '../protocol/ranking.ts'
import type { AdvertiseKeysMessage, PlanMessage, SecAggClientOutput, SecAggServerMessage } from '../protocol/secagg/messages.ts'
import type { QuantizationParams } from '../protocol/secagg/quantize.ts'
import type { PersonalizationOptions } from './personalization/personalization.ts'
import type { OffPolicyEstimate } from './rank/off-policy.ts'
import type { StopReason } from './model/train.ts'

export type { PersonalizationOptions, OffPolicyEstimate, StopReason }

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
  /** Sensitive features, retention, store size, exploration (see `PersonalizationOptions`). */
  readonly personalization?: PersonalizationOptions
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
  /** Events deleted so far because they were older than the retention window. */
  readonly eventsExpired: number
  /** Ranking decisions in the log. */
  readonly decisions: number
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
  /** Optimizer steps taken. */
  readonly steps: number
  /** `done`, or the budget that ended training early (`time`, `memory`). */
  readonly stoppedBy: StopReason
}

/** Limits of one local training run (DESIGN.md §6: training within a time and memory budget). */
export interface TrainingBudget {
  /** No optimizer step starts after this many milliseconds. */
  readonly maxMs?: number
  /** No optimizer step starts while tfjs holds more than this many bytes of tensors. */
  readonly maxTensorBytes?: number
}

/** One round this device took part in, as the preferences panel shows it. */
export interface RoundParticipation {
  readonly roundId: number
  readonly model: string
  readonly at: number
  /** How many numbers the device sent (the length of its clipped, masked update). */
  readonly elements: number
}

// ---- Personalization: ranking with reasons, the decision log, consent, export and delete ------

/** What `offPolicyEstimate` evaluates: a model (federated weights) and an exploration policy. */
export interface OffPolicyRequest {
  /**
   * Federated weights of the model to evaluate, in spec order. Default: the serving weights.
   * The user vector is reconstructed for them on the device's data first (Federated Reconstruction).
   */
  readonly weights?: Float32Array
  /** The policy on top of the model's scores: `none` (greedy, the default) or epsilon-greedy. */
  readonly exploration?: ExplorationConfig
  /** Top positions of each logged decision to use. Default 1 (the first slot). */
  readonly slots?: number
}

/** IPS and SNIPS estimates of a policy's reward (engagement) from the decision log. */
export interface OffPolicyReport extends OffPolicyEstimate {
  readonly decisions: number
  readonly slots: number
}

/** Ranking, its log, consent and the user's data. Additive to the training API below. */
export interface PersonalizationApi {
  /**
   * Ranks candidates on the device: the ordered candidates, each with its score, a true reason
   * and its propensity; logs the decision unless `options.log` is false. Never waits for
   * training. Paused, or without a model: the app's order.
   */
  rank(candidates: readonly RankCandidate[], context?: EventContext, options?: RankOptions): Promise<RankResult>
  /**
   * `rank()` as columns (protocol/ranking.ts `RankColumns`), whose buffers are transferred: what
   * the page calls, then builds the `RankResult` itself with `unpackRanking(columns, candidates)`.
   */
  rankColumns(candidates: readonly RankCandidate[], context?: EventContext, options?: RankOptions): Promise<RankColumns>
  /** Up to `limit` logged decisions, newest first (default all). */
  decisions(limit?: number): Promise<DecisionRecord[]>
  /** Estimates, from the decision log, how another model or exploration policy would have done. */
  offPolicyEstimate(request?: OffPolicyRequest): Promise<OffPolicyReport>
  settings(): Promise<PersonalizationSettings>
  /** Grants or revokes a consent category; revoking erases the category's stored feature values. */
  setConsent(category: string, granted: boolean): Promise<PersonalizationSettings>
  /** Paused: `rank()` keeps the app's order and `record()` stores nothing. */
  setPaused(paused: boolean): Promise<PersonalizationSettings>
  /** The user's choice to take part in federated rounds (the page opens no round socket while off). */
  setFederated(federated: boolean): Promise<PersonalizationSettings>
  /** Everything stored for the user (docs/data-export.md). */
  exportData(): Promise<HearthExport>
  /**
   * Deletes events, decisions, settings, the local model and every personal parameter (the
   * user vector, local fine-tuning). IndexedDB is left with empty stores; the downloaded global
   * model stays in memory until the page closes.
   */
  deleteData(): Promise<void>
}

/** The API the worker exposes. */
export interface HearthWorkerApi extends PersonalizationApi {
  /** Opens the store, starts a tfjs backend and restores the model. Call once, first. */
  init(options: WorkerInitOptions): Promise<WorkerInfo>
  /** Appends validated events to the store, in one transaction. */
  record(events: readonly InteractionEvent[]): Promise<void>
  stats(): Promise<DeviceStats>
  /** Stored events with `at` >= `since` (epoch ms), for counts by age. */
  countEvents(since: number): Promise<number>
  /** Every round this device took part in, oldest first. */
  rounds(): Promise<RoundParticipation[]>
  /** Adopts a published global version: stores it and re-fits the local part on local data. */
  installGlobal(version: number, weights: Float32Array): Promise<void>
  /** Fine-tunes the whole model on local events (no round), within `budget` if given. */
  trainLocal(plan: TrainingPlan, budget?: TrainingBudget): Promise<LocalTrainingResult>
  /** Trains from a round's global weights and returns the federated delta. */
  trainRound(request: RoundTrainingRequest): Promise<RoundTrainingResult>
  /** Remembers that this device's update for a round was accepted. */
  noteRound(entry: RoundParticipation): Promise<void>
  /**
   * Secure aggregation: joins the group of a `secagg/plan` (DESIGN.md §4) and returns the
   * AdvertiseKeys message. `quantization` comes from the round plan's `aggregation`; `noise`, in
   * a distributed-DP round, from its `privacy`: the worker then adds the device's noise share.
   */
  secaggBegin(plan: PlanMessage, quantization: QuantizationParams, noise?: DistributedPrivacyPlan): Promise<AdvertiseKeysMessage>
  /**
   * Answers the group's next server message. With `secagg/shares`, pass the round's delta: it is
   * clipped, quantized and masked here, and the masked frame comes back (transferred).
   */
  secaggStep(message: SecAggServerMessage, delta?: Float32Array): Promise<SecAggClientOutput | undefined>
  /** Leaves a round's group and wipes its secrets. */
  secaggAbort(roundId: number): Promise<void>
  /** Scores items for this user with the current model, in input order. */
  score(items: readonly string[]): Promise<Float32Array>
  /** Releases tensors and closes the store. */
  close(): Promise<void>
}
