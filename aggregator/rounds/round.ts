/**
 * The state of one round: who was selected, who uploaded or dropped, what was rejected, and the
 * running aggregation. No I/O and no timers; the engine drives it and persists `toRecord()`.
 */
import { CLIP_INDICATOR_ELEMENTS } from '../../protocol/clip.ts'
import { HearthError } from '../../protocol/errors.ts'
import type { ErrorCode } from '../../protocol/errors.ts'
import type { Frame } from '../../protocol/frames.ts'
import { FrameKind } from '../../protocol/frames.ts'
import { AggregationMode, RoundOutcome, RoundStage } from '../../protocol/messages.ts'
import type { RoundPlanMessage, RoundPrivacyPlan, RoundResultMessage, TrainingPlan } from '../../protocol/messages.ts'
import type { RoundConfig, RoundPrivacyRecord, RoundRecord, RoundSecAggRecord } from '../store/store.ts'
import type { SecureAggregation } from './secure-aggregation.ts'
import type { ClientSession } from './session.ts'
import type { AggregateResult, Aggregation, AggregationStrategy } from './strategy.ts'

/** What ended a round's upload stage. */
export type UploadsClosedBy = 'complete' | 'deadline' | 'dropouts' | 'shutdown' | 'secagg'

export class Round {
  readonly id: number
  readonly model: string
  readonly baseVersion: number
  readonly config: RoundConfig
  readonly createdAt: number
  readonly vectorLength: number
  /** Elements each upload carries: the vector, plus the clipping indicator in a DP round. */
  readonly uploadLength: number
  readonly #strategy: AggregationStrategy
  readonly #privacyPlan: RoundPrivacyPlan | null
  /** The round's DP parameters (and, once aggregated, its clipping outcome); null without DP. */
  privacy: RoundPrivacyRecord | null

  stage: RoundStage = RoundStage.Selection
  selectedAt: number | null = null
  uploadDeadline: number | null = null
  closedAt: number | null = null
  uploadsClosedBy: UploadsClosedBy | null = null
  outcome: RoundOutcome | null = null
  reason: string | null = null
  publishedVersion: number | null = null
  /** Sessions waiting when the cohort was drawn. */
  eligible = 0
  /** Ids of the selected sessions. */
  readonly participants = new Set<string>()
  readonly uploaded = new Set<string>()
  readonly dropped = new Set<string>()
  readonly #rejections = new Map<ErrorCode, number>()
  /** The selected sessions themselves, held only until the round has announced its result. */
  readonly #sessions = new Map<string, ClientSession>()
  #aggregation: Aggregation | undefined
  /** Secure aggregation, in a secure round between selection and the end of the round. */
  #secure: SecureAggregation | undefined
  /** What secure aggregation did, kept once the round has ended and `#secure` is gone. */
  #secagg: RoundSecAggRecord | null = null

  /**
   * A round in the selection stage, from its freshly stored record. In a DP round `strategy` is
   * the round's DP wrapper, `record.privacy` its parameters and `privacyPlan` what participants
   * are told.
   */
  constructor(record: RoundRecord, vectorLength: number, strategy: AggregationStrategy, privacyPlan: RoundPrivacyPlan | null) {
    this.id = record.id
    this.model = record.model
    this.baseVersion = record.baseVersion
    this.config = record.config
    this.createdAt = record.createdAt
    this.vectorLength = vectorLength
    this.privacy = record.privacy
    this.uploadLength = vectorLength + (record.privacy === null ? 0 : CLIP_INDICATOR_ELEMENTS)
    this.#strategy = strategy
    this.#privacyPlan = privacyPlan
  }

  /**
   * Moves to the training stage with `cohort` drawn from `eligible` waiting sessions. With
   * `secure`, the cohort's updates are combined by secure aggregation instead of the strategy.
   */
  select(cohort: readonly ClientSession[], eligible: number, now: number, uploadDeadline: number, secure?: SecureAggregation): void {
    if (this.stage !== RoundStage.Selection) throw new Error(`round ${this.id} is past selection`)
    for (const session of cohort) {
      this.participants.add(session.id)
      this.#sessions.set(session.id, session)
    }
    this.eligible = eligible
    this.selectedAt = now
    this.uploadDeadline = uploadDeadline
    if (secure === undefined) this.#aggregation = this.#strategy.open({ roundId: this.id, model: this.model, vectorLength: this.vectorLength })
    else this.#secure = secure
    this.stage = RoundStage.Training
  }

  /** The round's secure aggregation, while it runs. */
  get secure(): SecureAggregation | undefined {
    return this.#secure
  }

  /** The plan sent to each participant. */
  plan(training: TrainingPlan): RoundPlanMessage {
    if (this.uploadDeadline === null) throw new Error(`round ${this.id} has no cohort yet`)
    const plan: RoundPlanMessage = {
      type: 'round-plan',
      roundId: this.id,
      model: this.model,
      baseVersion: this.baseVersion,
      vectorLength: this.vectorLength,
      uploadDeadline: this.uploadDeadline,
      training,
      aggregation: this.#secure?.plan() ?? { mode: AggregationMode.Plain },
    }
    return this.#privacyPlan === null ? plan : { ...plan, privacy: this.#privacyPlan }
  }

  /**
   * Accepts `frame` as `session`'s upload, or throws the `HearthError` that says why not and
   * leaves the round unchanged. Checks run from who is asking to what they sent, so each
   * rejection carries the most specific code.
   */
  accept(session: ClientSession, frame: Frame, now: number, bytes: Uint8Array): void {
    if (!this.participants.has(session.id)) {
      throw new HearthError('HEARTH_ERR_NOT_SELECTED', `this session is not a participant of round ${this.id}`)
    }
    if (this.uploaded.has(session.id)) {
      throw new HearthError('HEARTH_ERR_DUPLICATE_UPLOAD', `round ${this.id} already holds this session's upload`)
    }
    if (this.#secure !== undefined) {
      this.#acceptMasked(this.#secure, session, frame, bytes)
      return
    }
    if (this.uploadsClosedBy === 'deadline' || (this.uploadDeadline !== null && now > this.uploadDeadline)) {
      throw new HearthError('HEARTH_ERR_LATE_UPLOAD', `round ${this.id} stopped taking uploads at ${new Date(this.uploadDeadline ?? now).toISOString()}`)
    }
    if (this.stage !== RoundStage.Training || this.#aggregation === undefined) {
      throw new HearthError('HEARTH_ERR_ROUND_CLOSED', `round ${this.id} is in stage ${this.stage}`)
    }
    if (frame.kind !== this.#strategy.frameKind) {
      throw new HearthError('HEARTH_ERR_MALFORMED_FRAME', `round ${this.id} takes frames of kind ${this.#strategy.frameKind}, got kind ${frame.kind}`)
    }
    if (frame.values.length !== this.uploadLength) {
      throw new HearthError('HEARTH_ERR_VECTOR_LENGTH', `round ${this.id} takes ${this.uploadLength} elements, got ${frame.values.length}`)
    }
    this.#aggregation.add(session.id, frame.values)
    this.uploaded.add(session.id)
  }

  /** The group's own stage deadline applies (`secagg-group.ts`), not the round's. */
  #acceptMasked(secure: SecureAggregation, session: ClientSession, frame: Frame, bytes: Uint8Array): void {
    if (this.stage !== RoundStage.Training) throw new HearthError('HEARTH_ERR_ROUND_CLOSED', `round ${this.id} is in stage ${this.stage}`)
    if (frame.kind !== FrameKind.MaskedUpdate) {
      throw new HearthError('HEARTH_ERR_MALFORMED_FRAME', `round ${this.id} uses secure aggregation: it takes MaskedUpdate frames, got kind ${frame.kind}`)
    }
    secure.receiveMaskedInput(session, bytes)
    this.uploaded.add(session.id)
  }

  /** The selected sessions, until {@link release}. */
  sessions(): IterableIterator<ClientSession> {
    return this.#sessions.values()
  }

  /** Lets go of the sessions once they were told the result; the ids stay for late messages. */
  release(): void {
    this.#sessions.clear()
  }

  /** Records that a participant left before uploading; false if it does not count as dropped. */
  drop(session: ClientSession): boolean {
    if (this.stage !== RoundStage.Training) return false
    if (!this.participants.has(session.id) || this.uploaded.has(session.id)) return false
    this.dropped.add(session.id)
    return true
  }

  /** Participants that may still upload. */
  pending(): number {
    return this.participants.size - this.uploaded.size - this.dropped.size
  }

  /** Counts one rejected message against this round. */
  countRejection(code: ErrorCode): void {
    this.#rejections.set(code, (this.#rejections.get(code) ?? 0) + 1)
  }

  /** Ends the upload stage. */
  closeUploads(by: UploadsClosedBy): void {
    if (this.stage !== RoundStage.Training) throw new Error(`round ${this.id} is not taking uploads`)
    this.uploadsClosedBy = by
    this.stage = RoundStage.Aggregation
  }

  /** The aggregate of the accepted uploads (in a secure round: of the unmasked group sums). */
  async aggregate(): Promise<AggregateResult> {
    if (this.stage !== RoundStage.Aggregation) throw new Error(`round ${this.id} is not aggregating`)
    if (this.#secure !== undefined) return this.#secure.result()
    if (this.#aggregation === undefined) throw new Error(`round ${this.id} has no aggregation`)
    return this.#aggregation.result()
  }

  /** Ends the round. Drops the aggregation state so the sum is not kept longer than needed. */
  finish(outcome: RoundOutcome, reason: string, now: number, publishedVersion: number | null = null): void {
    this.outcome = outcome
    this.reason = reason
    this.closedAt = now
    this.publishedVersion = outcome === RoundOutcome.Published ? publishedVersion : null
    this.stage = RoundStage.Done
    this.#aggregation = undefined
    if (this.#secure !== undefined) {
      this.#secure.stop(reason)
      this.#secagg = this.#secure.record()
      this.#secure = undefined
    }
  }

  /** The message announcing how the round ended. */
  result(): RoundResultMessage {
    if (this.outcome === null) throw new Error(`round ${this.id} has not ended`)
    return this.outcome === RoundOutcome.Published && this.publishedVersion !== null
      ? { type: 'round-result', roundId: this.id, outcome: this.outcome, version: this.publishedVersion }
      : { type: 'round-result', roundId: this.id, outcome: this.outcome, reason: this.reason ?? 'aborted' }
  }

  toRecord(): RoundRecord {
    return {
      id: this.id,
      model: this.model,
      baseVersion: this.baseVersion,
      stage: this.stage,
      config: this.config,
      createdAt: this.createdAt,
      selectedAt: this.selectedAt,
      uploadDeadline: this.uploadDeadline,
      closedAt: this.closedAt,
      eligible: this.eligible,
      participants: this.participants.size,
      uploadsAccepted: this.uploaded.size,
      dropped: this.dropped.size,
      rejections: Object.fromEntries(this.#rejections),
      outcome: this.outcome,
      reason: this.reason,
      publishedVersion: this.publishedVersion,
      privacy: this.privacy,
      secagg: this.#secure?.record() ?? this.#secagg,
    }
  }
}
