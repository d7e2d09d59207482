/**
 * The aggregator's storage, behind one asynchronous interface so that the embedded SQLite
 * store and the PostgreSQL store (several replicas, DESIGN.md §5) are interchangeable. Every
 * implementation in this folder passes the same contract suite (`test/aggregator/store.test.ts`).
 *
 * What is stored: model specs, published model versions (aggregates), round metadata, the
 * privacy ledger and the audit log. What is never stored: an individual client update, or who a
 * client is (DESIGN.md §3).
 */
import type { PrivacyBudget } from '../../protocol/dp/budget.ts'
import type { PrivacyEvent } from '../../protocol/dp/events.ts'
import type { ErrorCode } from '../../protocol/errors.ts'
import type { PrivacyMode, RoundOutcome, RoundStage, TrainingPlan } from '../../protocol/messages.ts'
import type { SecAggMode } from '../../protocol/secagg/params.ts'
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
  /** The round that produced this version; null for the initial weights and for rollbacks. */
  readonly roundId: number | null
}

/** A version without its weights, for listings. */
export type ModelVersionSummary = Omit<ModelVersionRecord, 'weights'>

export interface VersionQuery {
  readonly model: string
  /** Only versions below this one (keyset pagination). */
  readonly before?: number
  readonly limit: number
}

/**
 * One entry of the audit log: an admin action or a round's outcome. Append-only: the interface
 * has no way to change or remove an entry, and the SQL stores refuse UPDATE and DELETE with a
 * trigger. Never an individual update or a client identity (counts only).
 */
export interface AuditEntry {
  /** Increasing, never reused. */
  readonly id: number
  /** Epoch milliseconds. */
  readonly at: number
  /** `system`, `admin`, or `admin:<name>` where the name is self-declared (`audit/actor.ts`). */
  readonly actor: string
  /** What happened, e.g. `model.rollback`, `round.published`. */
  readonly action: string
  /** What it happened to, e.g. `model/default`, `round/12`. */
  readonly subject: string
  /** JSON object with the particulars of the action. */
  readonly details: Readonly<Record<string, unknown>>
}

export type NewAuditEntry = Omit<AuditEntry, 'id'>

export interface AuditQuery {
  /** Only entries with an id below this one (keyset pagination). */
  readonly before?: number
  readonly limit: number
}

/**
 * How a round's cohort is drawn (`rounds/selection.ts`): `uniform`, min(maxCohort, n) of the n
 * waiting sessions without replacement; `poisson`, each waiting session independently with
 * probability `rate`.
 */
export type SamplingConfig = { readonly kind: 'uniform' } | { readonly kind: 'poisson'; readonly rate: number }

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
  /** Cohort sampling; absent in rounds stored before it was recorded (they were `uniform`). */
  readonly sampling?: SamplingConfig
  /**
   * Hex SHA-256 of the round configuration document an operator created the round from
   * (`roundDocumentHash`); absent in rounds the engine opened by itself.
   */
  readonly documentHash?: string
}

/** Adaptive clipping's settings in a round (ATMR21; `aggregator/privacy/adaptive-clipping.ts`). */
export interface AdaptiveClippingParameters {
  /** γ: the quantile of update norms the clip norm tracks. */
  readonly targetQuantile: number
  /** η_C of the geometric update. */
  readonly learningRate: number
  /** σ_b: noise standard deviation on the sum of clipping indicators. */
  readonly countNoise: number
  /** z_Δ = (z^−2 − (2σ_b)^−2)^−1/2: the delta's noise over C (ATMR21 §3). */
  readonly deltaNoiseMultiplier: number
}

/** The DP parameters of one round, as run and as accounted. */
export interface PrivacyParameters {
  readonly mode: PrivacyMode
  /** In plain words, whom this mode trusts with what (`aggregator/privacy/trust.ts`). */
  readonly trustAssumption: string
  readonly sampling: SamplingConfig['kind']
  /** q: the sampling rate the accountant uses (1 for `uniform`: no amplification claimed). */
  readonly samplingRate: number
  /** C: the clip norm of this round. */
  readonly clipNorm: number
  /** z: the configured noise multiplier of the round's combined query. */
  readonly noiseMultiplier: number
  /** The noise multiplier the accountant uses: z after the noise grid and the norm tolerance. */
  readonly effectiveNoiseMultiplier: number
  /** m: the fixed denominator of the mean (the expected cohort size, MRTZ18). */
  readonly denominator: number
  readonly adaptiveClipping: AdaptiveClippingParameters | null
  /** The model's budget when the round ran. */
  readonly budget: PrivacyBudget
}

/** How many updates a round clipped: the count only, never who. */
export interface ClippingOutcome {
  /** Accepted uploads. */
  readonly uploads: number
  /** Exact number clipped; null with adaptive clipping, where only a noised estimate exists. */
  readonly clippedCount: number | null
  /** Fraction clipped: exact, or 1 − the noised unclipped fraction with adaptive clipping. */
  readonly clippedFraction: number
  /** True when `clippedFraction` is the noised (DP) estimate. */
  readonly noised: boolean
  /** The clip norm for the model's next round (equal to `clipNorm` without adaptive clipping). */
  readonly nextClipNorm: number
}

/** The privacy side of a round record (null in rounds without DP). */
export interface RoundPrivacyRecord extends PrivacyParameters {
  /** What the accountant composes if the round publishes. */
  readonly event: PrivacyEvent
  /** The model's ε (at the budget's δ) before this round. */
  readonly epsilonBefore: number
  /** The model's ε if this round publishes; checked against the budget before it opened. */
  readonly epsilonIfPublished: number
  /** Set once the round aggregated. */
  readonly clipping: ClippingOutcome | null
}

/** One published DP round in a model's privacy ledger. Append-only. */
export interface LedgerEntry extends PrivacyParameters {
  /** Increasing, never reused. */
  readonly id: number
  readonly model: string
  readonly roundId: number
  /** The model version the round published. */
  readonly version: number
  /** Epoch milliseconds. */
  readonly recordedAt: number
  /** The accountant's event for this round, composed `count` times. */
  readonly event: PrivacyEvent
  readonly count: number
  /** DP rounds composed in this model's ledger so far, this one included. */
  readonly rounds: number
  /** Cumulative ε of the model at `budget.delta` after this round. */
  readonly epsilon: number
  /** The Rényi order at which `epsilon` was attained. */
  readonly order: number
  readonly clipping: ClippingOutcome
}

export type NewLedgerEntry = Omit<LedgerEntry, 'id'>

/** Why a model's next round was refused before it opened. */
export interface PrivacyRefusal {
  readonly code: ErrorCode
  readonly reason: string
  /** Epoch milliseconds. */
  readonly at: number
}

/** A model's privacy state between rounds. */
export interface ModelPrivacyState {
  readonly model: string
  /** The clip norm of the next round, when adaptive clipping moved it; null: the configured one. */
  readonly clipNorm: number | null
  /** The latest refusal, until a round opens again. */
  readonly refusal: PrivacyRefusal | null
}

/** What a DP round writes with its version, in the same transaction. */
export interface PrivacyCommit {
  readonly entry: NewLedgerEntry
  readonly state: ModelPrivacyState
}

/**
 * One group of a secure-aggregation round, for the privacy team: its size, its derived k and
 * t, how many clients were still in after each stage, and whether its sum was used. Counts
 * only: which client was in which group is never recorded.
 */
export interface SecAggGroupRecord {
  readonly groupId: number
  /** Clients planned in the group. */
  readonly clients: number
  /** k: neighbours per client in the communication graph (clients − 1 when complete). */
  readonly degree: number
  /** t: the Shamir threshold, also the fewest survivors the group may finish with. */
  readonly threshold: number
  /** The stage the group is in, or `completed` / `aborted`. */
  readonly state: string
  /** Clients still in after AdvertiseKeys, ShareKeys, MaskedInputCollection, Unmasking. */
  readonly advertised: number | null
  readonly shared: number | null
  readonly masked: number | null
  readonly unmasked: number | null
  /** Inputs in the group's sum; 0 when the group contributed nothing. */
  readonly survivors: number
  readonly contributed: boolean
  /** Why the group ended without a sum (with its error code), when it did. */
  readonly reason: string | null
}

/** How a secure-aggregation round ran. */
export interface RoundSecAggRecord {
  readonly variant: SecAggMode
  readonly clipNorm: number
  readonly modulusBits: number
  /** The quantization's n: the largest group. */
  readonly maxSummands: number
  readonly expectedDropout: number
  readonly corruptFraction: number
  readonly groups: readonly SecAggGroupRecord[]
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
  /** DP parameters and outcome; null when the round ran without differential privacy. */
  readonly privacy: RoundPrivacyRecord | null
  /** Secure aggregation's parameters and groups; null for plain aggregation. */
  readonly secagg: RoundSecAggRecord | null
}

/**
 * An adaptive server optimizer's moments (`rounds/adaptive-optimizer.ts`) after the round that
 * published `version`, stored in the same transaction as that version. Aggregates only: m and v
 * are running averages of the published mean deltas.
 */
export interface OptimizerStateRecord {
  readonly model: string
  readonly version: number
  /** `ServerOptimizer.name` of the optimizer whose state this is, e.g. `fedadam`. */
  readonly optimizer: string
  /** Steps taken since the moments started. */
  readonly rounds: number
  /** First and second moments, one float64 per federated weight. */
  readonly m: Float64Array
  readonly v: Float64Array
}

/** A round before the store gave it an id. */
export type NewRound = Omit<RoundRecord, 'id'>

/** A round that has only begun: what it is, and zero or nothing for every count and outcome. */
export function freshRound(start: Pick<NewRound, 'model' | 'baseVersion' | 'stage' | 'config' | 'createdAt'> & Partial<NewRound>): NewRound {
  return {
    selectedAt: null,
    uploadDeadline: null,
    closedAt: null,
    eligible: 0,
    participants: 0,
    uploadsAccepted: 0,
    dropped: 0,
    rejections: {},
    outcome: null,
    reason: null,
    publishedVersion: null,
    privacy: null,
    secagg: null,
    ...start,
  }
}

export interface RoundQuery {
  readonly model?: string
  /** Only rounds with an id below this one (keyset pagination). */
  readonly before?: number
  readonly limit: number
}

/**
 * Everything the aggregator persists. Implementations must make `createModel` and
 * `publishRound` atomic (with its ledger entry), and reject a second version with the same number
 * (`HEARTH_ERR_ROUND_FAILED`), which is what keeps two replicas from publishing over each other.
 */
export interface AggregatorStore {
  getModel(name: string): Promise<ModelRecord | undefined>
  /** Adds a model with its initial version, atomically. Rejects an existing name. */
  createModel(model: ModelRecord, initial: ModelVersionRecord): Promise<void>
  latestVersion(model: string): Promise<ModelVersionRecord | undefined>
  getVersion(model: string, version: number): Promise<ModelVersionRecord | undefined>
  /** Versions of a model without their weights, newest first (empty for an unknown model). */
  listVersions(query: VersionQuery): Promise<ModelVersionSummary[]>
  /**
   * Inserts a version that no round produced (`roundId` null: a rollback) and appends `audit`,
   * in one transaction; returns the stored audit entry. Rejects an existing version number
   * (`HEARTH_ERR_ROUND_FAILED`, as `publishRound`) and an unknown model.
   */
  publishVersion(version: ModelVersionRecord, audit: NewAuditEntry): Promise<AuditEntry>

  /** Persists a new round and returns it with its id. */
  createRound(round: NewRound): Promise<RoundRecord>
  /** Replaces the stored record of `round.id`. */
  updateRound(round: RoundRecord): Promise<void>
  /**
   * Inserts `version` and saves `round` (which names it) in one transaction; with `privacy`, also
   * appends its ledger entry and saves the model's privacy state, in the same transaction, so a
   * published version never lacks its entry in the ledger; with `optimizer`, also stores the
   * optimizer's state for that version, so the moments never get out of step with the weights.
   */
  publishRound(round: RoundRecord, version: ModelVersionRecord, privacy?: PrivacyCommit, optimizer?: OptimizerStateRecord): Promise<void>
  /** The optimizer state stored with `version` of `model`, if its round stored one. */
  getOptimizerState(model: string, version: number): Promise<OptimizerStateRecord | undefined>
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

  /** The privacy ledger of `model`, oldest first (empty for an unknown model). */
  listLedger(model: string): Promise<LedgerEntry[]>
  getPrivacyState(model: string): Promise<ModelPrivacyState | undefined>
  /** Replaces the privacy state of `state.model` (which must exist). */
  setPrivacyState(state: ModelPrivacyState): Promise<void>

  /** Appends one entry to the audit log and returns it with its id. */
  appendAudit(entry: NewAuditEntry): Promise<AuditEntry>
  /** Audit entries, newest first. */
  listAudit(query: AuditQuery): Promise<AuditEntry[]>

  close(): Promise<void>
}
