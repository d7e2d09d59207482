/**
 * The aggregator's storage, behind one asynchronous interface so that the embedded SQLite
 * store and a future PostgreSQL store (several replicas, DESIGN.md §5) are interchangeable.
 * Both implementations in this folder pass the same contract suite
 * (`test/aggregator/store.test.ts`).
 *
 * What is stored: model specs, published model versions (aggregates) and round metadata.
 * What is never stored: an individual client update (DESIGN.md §3).
 */
import type { ErrorCode } from '../../protocol/errors.ts'
import type { RoundOutcome, RoundStage, TrainingPlan } from '../../protocol/messages.ts'
import type { ModelSpec } from '../../protocol/model-spec.ts'

/** A model the aggregator serves. */
export interface ModelRecord {
  readonly name: string
  readonly spec: ModelSpec
  /** Epoch milliseconds. */
  readonly createdAt: number
}

/** One published version of a model's federated weights. */
export interface ModelVersionRecord {
  readonly model: string
  /** 1 for the initial weights, then one more per published round. */
  readonly version: number
  /** The flat federated vector, in `federatedLayout(spec)` order. */
  readonly weights: Float32Array
  /** Hex SHA-256 of the weights as little-endian float32 bytes (the wire payload). */
  readonly sha256: string
  /** Epoch milliseconds. */
  readonly createdAt: number
  /** The round that produced this version; null for the initial weights. */
  readonly roundId: number | null
}

/** The settings a round ran with, kept with the round for audit. */
export interface RoundConfig {
  readonly minCohort: number
  readonly maxCohort: number
  readonly selectionTimeoutMs: number
  readonly uploadTimeoutMs: number
  readonly training: TrainingPlan
  /** `AggregationStrategy.name`, e.g. `plain-sum`. */
  readonly strategy: string
  /** `ServerOptimizer.name`, e.g. `fedavg`. */
  readonly optimizer: string
}

/** Rejected client messages of a round, counted per catalogue code. */
export type RejectionCounts = Readonly<Partial<Record<ErrorCode, number>>>

/** A round's metadata: who took part (counts only), what was rejected, how it ended. */
export interface RoundRecord {
  /** Positive, increasing, never reused: clients put it in their Update frames. */
  readonly id: number
  readonly model: string
  readonly baseVersion: number
  readonly stage: RoundStage
  readonly config: RoundConfig
  /** Epoch milliseconds at which the round opened for selection. */
  readonly createdAt: number
  /** Epoch milliseconds at which the cohort was selected, if it was. */
  readonly selectedAt: number | null
  /** The upload deadline sent to participants, epoch milliseconds. */
  readonly uploadDeadline: number | null
  /** Epoch milliseconds at which the round ended. */
  readonly closedAt: number | null
  /** Sessions waiting when the cohort was drawn (n of the sampling rate k / n). */
  readonly eligible: number
  /** Number of selected clients (k). */
  readonly participants: number
  readonly uploadsAccepted: number
  /** Selected clients that disconnected before uploading. */
  readonly dropped: number
  readonly rejections: RejectionCounts
  /** Null while the round runs. */
  readonly outcome: RoundOutcome | null
  /** Why the round ended: the abort reason, or what closed the upload stage. */
  readonly reason: string | null
  readonly publishedVersion: number | null
}

/** A round before the store gave it an id. */
export type NewRound = Omit<RoundRecord, 'id'>

export interface RoundQuery {
  readonly model?: string
  /** Only rounds with an id below this one (keyset pagination). */
  readonly before?: number
  readonly limit: number
}

/**
 * Everything the aggregator persists. Implementations must make `createModel` and
 * `publishRound` atomic, and reject a second version with the same number
 * (`HEARTH_ERR_ROUND_FAILED`), which is what keeps two replicas from publishing over each other.
 */
export interface AggregatorStore {
  getModel(name: string): Promise<ModelRecord | undefined>
  /** Adds a model with its initial version, atomically. Rejects an existing name. */
  createModel(model: ModelRecord, initial: ModelVersionRecord): Promise<void>
  latestVersion(model: string): Promise<ModelVersionRecord | undefined>
  getVersion(model: string, version: number): Promise<ModelVersionRecord | undefined>

  /** Persists a new round and returns it with its id. */
  createRound(round: NewRound): Promise<RoundRecord>
  /** Replaces the stored record of `round.id`. */
  updateRound(round: RoundRecord): Promise<void>
  /** Inserts `version` and saves `round` (which names it) in one transaction. */
  publishRound(round: RoundRecord, version: ModelVersionRecord): Promise<void>
  getRound(id: number): Promise<RoundRecord | undefined>
  /** Rounds, newest first. */
  listRounds(query: RoundQuery): Promise<RoundRecord[]>
  /** The highest round id ever given, 0 if none. */
  lastRoundId(): Promise<number>
  /**
   * Marks every round without an outcome as aborted. Called at startup: a round that was in
   * flight when the process died cannot resume, because its accepted updates lived in memory
   * only (they are never written, DESIGN.md §3). Returns the ids it aborted.
   */
  abortUnfinishedRounds(reason: string, at: number): Promise<number[]>

  close(): Promise<void>
}
