/**
 * JSON control messages of the round protocol, keyed on `type` (binary frames are in
 * `frames.ts`). Types only, no logic: the aggregator validates incoming messages with its
 * schemas and the client with `parseServerMessage`.
 *
 * One WebSocket per device session, at `ROUTES.roundsSocket`:
 *
 * ```
 * client                                   aggregator
 *   checkin {appKey, model, ...}      →
 *                                     ←    welcome {sessionId, latestVersion}
 *                                     ←    round-plan {roundId, baseVersion, deadlines, privacy?, ...}
 *   (fetch weights over HTTP, train; with privacy, clip and append the indicator)
 *   binary Update frame (id = roundId) →
 *                                     ←    upload-accepted {roundId}
 *                                     ←    round-result {roundId, outcome, version?}
 * ```
 *
 * In a round whose plan says `aggregation.mode = 'secagg'`, the upload is replaced by one group
 * of secure aggregation (`protocol/secagg/messages.ts`): the aggregator sends `secagg/plan` right
 * after the round plan, the stages' JSON messages travel on the same socket, and the masked
 * input is a binary `MaskedUpdate` frame (id = roundId) instead of the `Update` frame.
 * Any rejection comes back as `error {code, message, roundId?}` and never closes the socket
 * unless the session itself is invalid (bad app key, unsupported protocol).
 */
import type { ErrorCode } from './errors.ts'
import type { ModelSpec } from './model-spec.ts'
import type { SecAggClientMessage, SecAggServerMessage } from './secagg/messages.ts'
import type { SecAggMode } from './secagg/params.ts'

/** The protocol version spoken by this build; bumped on any incompatible change. */
export const PROTOCOL_VERSION = 1

/** HTTP and WebSocket paths of the aggregator's client-facing API. */
export const ROUTES = {
  health: '/health',
  ready: '/ready',
  roundsSocket: '/v1/rounds/socket',
  model: (model: string) => `/v1/models/${encodeURIComponent(model)}`,
  modelVersion: (model: string, version: number | 'latest') =>
    `/v1/models/${encodeURIComponent(model)}/versions/${version}`,
} as const

/**
 * Stages of a round, in order. Secure aggregation inserts its own stages before `training` ends.
 * `created`: an operator created the round (admin API) and it has not opened yet.
 */
export const RoundStage = {
  Created: 'created',
  Selection: 'selection',
  Training: 'training',
  Aggregation: 'aggregation',
  Done: 'done',
} as const
export type RoundStage = (typeof RoundStage)[keyof typeof RoundStage]

/** How a round ended. */
export const RoundOutcome = {
  Published: 'published',
  Aborted: 'aborted',
} as const
export type RoundOutcome = (typeof RoundOutcome)[keyof typeof RoundOutcome]

/** Local training settings the aggregator asks of each participant. */
export interface TrainingPlan {
  readonly epochs: number
  readonly batchSize: number
  readonly learningRate: number
  /** Upper bound on examples a client uses, so slow devices finish in time. */
  readonly maxExamples: number
}

// ---- client → aggregator -------------------------------------------------------------------

/** First message on a socket: identifies the app and the model, and asks to take part in rounds. */
export interface CheckinMessage {
  readonly type: 'checkin'
  readonly protocol: number
  readonly appKey: string
  readonly model: string
  /** The model version the device holds, if any; informational. */
  readonly modelVersion?: number
}

export type ClientMessage = CheckinMessage | SecAggClientMessage

// ---- aggregator → client -------------------------------------------------------------------

export interface WelcomeMessage {
  readonly type: 'welcome'
  /** Opaque per-connection pseudonym; never tied to a device across sessions. */
  readonly sessionId: string
  readonly model: string
  readonly latestVersion: number
}

/**
 * Differential-privacy modes of a round (DESIGN.md §3). `central`: clients clip, the aggregator
 * adds the noise. `distributed`: clients clip and add integer noise shares before masking, under
 * secure aggregation (Kairouz, Liu, Steinke 2021), so the aggregator only sees noised sums.
 */
export const PrivacyMode = {
  Central: 'central',
  Distributed: 'distributed',
} as const
export type PrivacyMode = (typeof PrivacyMode)[keyof typeof PrivacyMode]

/**
 * What a participant of a central-DP round must do: clip its federated delta to L2 norm
 * `clipNorm` and append the clipping indicator (`protocol/clip.ts`, `clipForUpload`), so the
 * upload carries `vectorLength + CLIP_INDICATOR_ELEMENTS` elements. The aggregator refuses a
 * delta whose norm exceeds `clipNorm` (`HEARTH_ERR_VECTOR_VALUE`).
 */
export interface CentralPrivacyPlan {
  readonly mode: typeof PrivacyMode.Central
  /** C: the L2 norm bound of the delta, this round (it moves with adaptive clipping). */
  readonly clipNorm: number
}

/**
 * What a participant of a distributed-DP round must do: make the private upload as in central
 * DP (clip to `clipNorm`, append the indicator), then in the worker, instead of quantizing:
 * multiply by `scale`, round stochastically to integers, add one draw of `mechanism` noise of
 * variance `localVariance` per element, and reduce mod 2^modulusBits of the secure plan
 * (`protocol/dp/distributed-encoding.ts`). The values come from `planDistributedDp`.
 */
export interface DistributedPrivacyPlan {
  readonly mode: typeof PrivacyMode.Distributed
  /** C: the L2 norm bound of the delta. */
  readonly clipNorm: number
  readonly mechanism: DistributedNoiseMechanism
  /** s: integers per unit of the model. */
  readonly scale: number
  /** Each device's noise share variance, in the scaled integer domain. */
  readonly localVariance: number
}

/** The integer noise of distributed DP: discrete Gaussian (CKS20) or Skellam (AKL21). */
export type DistributedNoiseMechanism = 'discrete-gaussian' | 'skellam'

/** A round's DP instructions; a client that does not know the mode must not upload. */
export type RoundPrivacyPlan = CentralPrivacyPlan | DistributedPrivacyPlan

/** How a round combines the participants' updates. */
export const AggregationMode = {
  /** Updates travel as float32 `Update` frames and are summed in the clear. */
  Plain: 'plain',
  /** Secure aggregation: the aggregator learns only the sum (DESIGN.md §4). */
  SecAgg: 'secagg',
} as const
export type AggregationMode = (typeof AggregationMode)[keyof typeof AggregationMode]

/** A plain round: upload the (clipped, in a private round) delta as an `Update` frame. */
export interface PlainAggregationPlan {
  readonly mode: typeof AggregationMode.Plain
}

/**
 * A secure-aggregation round: clip the delta to L2 norm `clipNorm`, quantize it into
 * Z_{2^modulusBits} with `maxSummands` (`protocol/secagg/quantize.ts`), then mask it in the group
 * the `secagg/plan` message names. Every group of the round quantizes alike, so the group sums
 * add up exactly. With central DP (`privacy` in the plan) the input is the private upload instead
 * — the delta clipped to `privacy.clipNorm` and its clipping indicator — and `clipNorm` here is
 * that upload's norm bound √(C² + ¼).
 */
export interface SecureAggregationPlan {
  readonly mode: typeof AggregationMode.SecAgg
  /** `secagg` (complete graph) or `secagg+` (sparse graph); k and t are in each group's plan. */
  readonly variant: SecAggMode
  readonly clipNorm: number
  readonly modulusBits: number
  /** The largest group of the round: the quantization's n, so no group sum can wrap. */
  readonly maxSummands: number
  /** Groups the cohort was split into. */
  readonly groups: number
}

export type AggregationPlan = PlainAggregationPlan | SecureAggregationPlan

/** Sent to each selected client when a round starts. Deadlines are epoch milliseconds. */
export interface RoundPlanMessage {
  readonly type: 'round-plan'
  readonly roundId: number
  readonly model: string
  /** Train from this version; upload its delta. */
  readonly baseVersion: number
  /** Number of elements of the federated vector (the model's weights and the delta). */
  readonly vectorLength: number
  readonly uploadDeadline: number
  readonly training: TrainingPlan
  /** How updates are combined; absent means plain (aggregators before secure aggregation). */
  readonly aggregation?: AggregationPlan
  /**
   * Present in differentially private rounds: clip (and append the indicator) as it says.
   * Absent: upload the delta as is, `vectorLength` elements.
   */
  readonly privacy?: RoundPrivacyPlan
}

export interface UploadAcceptedMessage {
  readonly type: 'upload-accepted'
  readonly roundId: number
}

export interface RoundResultMessage {
  readonly type: 'round-result'
  readonly roundId: number
  readonly outcome: RoundOutcome
  /** The published version when `outcome` is `published`. */
  readonly version?: number
  /** Why the round was aborted, when it was. */
  readonly reason?: string
}

export interface ErrorMessage {
  readonly type: 'error'
  readonly code: ErrorCode
  readonly message: string
  readonly roundId?: number
}

export type ServerMessage =
  | WelcomeMessage
  | RoundPlanMessage
  | UploadAcceptedMessage
  | RoundResultMessage
  | ErrorMessage
  | SecAggServerMessage

/** HTTP body of `GET ROUTES.model(name)`. */
export interface ModelInfo {
  readonly name: string
  readonly latestVersion: number
  readonly spec: ModelSpec
}
