/**
 * The device's half of a federated round: on a plan, fetch the round's base version, train in
 * the worker, and upload the federated delta as one binary frame before the deadline — or, in a
 * secure-aggregation round, hand it to the worker to be clipped, quantized and masked in the
 * round's group (`secure-round.ts`); on a result, adopt the published version.
 */
import { transfer } from 'comlink'
import { clipForUpload } from '../protocol/clip.ts'
import { errorFromBody, HearthError, isErrorCode } from '../protocol/errors.ts'
import { encodeFrame, FrameKind } from '../protocol/frames.ts'
import type { ClientMessage, DistributedPrivacyPlan, RoundPlanMessage, SecureAggregationPlan, ServerMessage } from '../protocol/messages.ts'
import type { HearthWorkerApi } from '../worker/api.ts'
import type { RoundEventDetail } from './events.ts'
import { SecureRound } from './secure-round.ts'
import type { ModelFetcher } from './transport/model-fetcher.ts'

export interface RoundParticipantOptions {
  readonly model: string
  readonly worker: HearthWorkerApi
  readonly fetcher: ModelFetcher
  readonly sendBinary: (bytes: Uint8Array) => void
  /** Sends a JSON control message (secure aggregation's stages). */
  readonly sendMessage: (message: ClientMessage) => void
  /** Installs a published version on the device (serialized by the caller). */
  readonly adoptVersion: (version: number) => Promise<void>
  readonly onRound: (detail: RoundEventDetail) => void
  readonly onError: (error: HearthError) => void
  readonly now?: () => number
}

export class RoundParticipant {
  readonly #options: RoundParticipantOptions
  /** Rounds this device uploaded to and the length of what it sent, until the server answers. */
  readonly #uploaded = new Map<number, number>()
  /** Secure-aggregation rounds this device is in, by round id. */
  readonly #secure = new Map<number, SecureRound>()
  #busy = false
  #stopped = false
  #current: Promise<void> = Promise.resolve()

  constructor(options: RoundParticipantOptions) {
    this.#options = options
  }

  /**
   * Ignores every later message, leaves every secure round (wiping its secrets in the worker) and
   * sends nothing more; resolves when the round in progress (if any) has settled.
   */
  stop(): Promise<void> {
    this.#stopped = true
    for (const round of this.#secure.values()) void round.abort()
    this.#secure.clear()
    this.#uploaded.clear()
    return this.#current
  }

  /** Routes one server message; returns nothing and never throws (errors go to `onError`). */
  handle(message: ServerMessage): void {
    if (this.#stopped) return
    switch (message.type) {
      case 'round-plan':
        this.#forgetSecureRoundsBefore(message.roundId)
        this.#current = this.#join(message)
        return
      case 'upload-accepted':
        void this.#accepted(message.roundId)
        return
      case 'round-result':
        this.#uploaded.delete(message.roundId)
        void this.#secure.get(message.roundId)?.abort()
        this.#secure.delete(message.roundId)
        if (message.outcome === 'published' && message.version !== undefined) {
          this.#options.onRound({ roundId: message.roundId, status: 'published', version: message.version })
          void this.#options.adoptVersion(message.version).catch((e: unknown) => this.#fail(e))
        } else {
          this.#options.onRound({ roundId: message.roundId, status: 'aborted', reason: message.reason ?? 'unknown' })
        }
        return
      case 'welcome':
        if (message.latestVersion > 0) void this.#options.adoptVersion(message.latestVersion).catch((e: unknown) => this.#fail(e))
        return
      case 'error':
        this.#fail(errorFromBody(message))
        return
      default:
        this.#secure.get(message.roundId)?.handle(message)
    }
  }

  async #join(plan: RoundPlanMessage): Promise<void> {
    const now = this.#options.now ?? Date.now
    if (this.#busy) {
      this.#options.onRound({ roundId: plan.roundId, status: 'skipped', reason: 'already training for another round' })
      return
    }
    this.#busy = true
    try {
      this.#options.onRound({ roundId: plan.roundId, status: 'training' })
      const aggregation: { mode?: unknown } = plan.aggregation ?? { mode: 'plain' }
      if (aggregation.mode !== 'plain' && aggregation.mode !== 'secagg') {
        // A mode this client does not know might expect what the plain path would send in the clear.
        throw new HearthError('HEARTH_ERR_UNSUPPORTED_PROTOCOL', `round ${plan.roundId} asks for aggregation mode ${String(aggregation.mode)}, which this client does not implement`)
      }
      const training = this.#train(plan)
      // Registered before the first await: the group's `secagg/plan` follows the round plan.
      if (plan.aggregation?.mode === 'secagg') {
        // With DP the input is the private upload (clipped delta and indicator).
        const input = training.then((delta) => uploadValues(plan, delta))
        const noise = plan.privacy?.mode === 'distributed' ? plan.privacy : undefined
        this.#secure.set(plan.roundId, this.#secureRound(plan.roundId, plan.aggregation, input, noise))
        // Busy until trained; a training failure is reported when the group needs the delta.
        await input.catch(() => undefined)
        return
      }
      const result = await training
      if (this.#stopped) return
      // A late upload would be refused; never send stale work.
      if (now() > plan.uploadDeadline) {
        this.#options.onRound({ roundId: plan.roundId, status: 'skipped', reason: 'training finished after the upload deadline' })
        return
      }
      const values = uploadValues(plan, result)
      this.#options.sendBinary(encodeFrame({ kind: FrameKind.Update, id: plan.roundId, values }))
      this.#uploaded.set(plan.roundId, values.length)
      this.#options.onRound({ roundId: plan.roundId, status: 'uploaded' })
    } catch (error) {
      this.#options.onRound({ roundId: plan.roundId, status: 'skipped', reason: error instanceof Error ? error.message : String(error) })
      this.#fail(error)
    } finally {
      this.#busy = false
    }
  }

  /**
   * A group whose round never told this session its result (the socket was lost and a new
   * session checked in) is over by the time a later round starts: leave it and wipe its secrets.
   */
  #forgetSecureRoundsBefore(roundId: number): void {
    for (const [id, round] of this.#secure) {
      if (id >= roundId) continue
      void round.abort()
      this.#secure.delete(id)
    }
  }

  async #train(plan: RoundPlanMessage): Promise<Float32Array> {
    const { weights } = await this.#options.fetcher.weights(plan.baseVersion)
    if (weights.length !== plan.vectorLength) {
      throw new HearthError('HEARTH_ERR_MODEL_MISMATCH', `round ${plan.roundId} expects ${plan.vectorLength} weights, version ${plan.baseVersion} has ${weights.length}`)
    }
    const request = { roundId: plan.roundId, baseVersion: plan.baseVersion, globalWeights: weights, plan: plan.training }
    return (await this.#options.worker.trainRound(transfer(request, [weights.buffer]))).delta
  }

  #secureRound(roundId: number, aggregation: SecureAggregationPlan, delta: Promise<Float32Array>, noise: DistributedPrivacyPlan | undefined): SecureRound {
    return new SecureRound({
      roundId,
      plan: aggregation,
      ...(noise === undefined ? {} : { noise }),
      delta,
      worker: this.#options.worker,
      sendMessage: (message) => this.#options.sendMessage(message),
      sendBinary: (bytes) => this.#options.sendBinary(bytes),
      onMasked: (elements) => {
        this.#uploaded.set(roundId, elements)
        this.#options.onRound({ roundId, status: 'uploaded' })
      },
      onError: (error) => {
        this.#options.onRound({ roundId, status: 'skipped', reason: error instanceof Error ? error.message : String(error) })
        this.#fail(error)
      },
    })
  }

  async #accepted(roundId: number): Promise<void> {
    const elements = this.#uploaded.get(roundId)
    if (elements === undefined || this.#stopped) return
    try {
      await this.#options.worker.noteRound({ roundId, model: this.#options.model, at: Date.now(), elements })
      this.#options.onRound({ roundId, status: 'accepted' })
    } catch (error) {
      this.#fail(error)
    }
  }

  #fail(error: unknown): void {
    if (this.#stopped) return
    this.#options.onError(asHearthError(error))
  }
}

/** Errors from the worker cross comlink as plain `Error`s that keep their `code` (worker/expose.ts). */
function asHearthError(error: unknown): HearthError {
  if (error instanceof HearthError) return error
  if (error instanceof Error && isErrorCode((error as { code?: unknown }).code)) return errorFromBody(error)
  return new HearthError('HEARTH_ERR_INTERNAL', String(error), { cause: error })
}

/**
 * What a participant sends: the delta as is, or in a private round the delta clipped to the
 * plan's norm with the clipping indicator appended (`protocol/clip.ts`); in a distributed-DP
 * round the worker then adds the noise share, so such a round without secure aggregation, which
 * would send the upload un-noised, is refused. An unknown privacy mode is refused rather than
 * uploaded unprotected.
 */
function uploadValues(plan: RoundPlanMessage, delta: Float32Array): Float32Array {
  const privacy = plan.privacy
  if (privacy === undefined) return delta
  switch (privacy.mode) {
    case 'central':
      return clipForUpload(delta, privacy.clipNorm).values
    case 'distributed':
      if (plan.aggregation?.mode !== 'secagg') {
        throw new HearthError('HEARTH_ERR_UNSUPPORTED_PROTOCOL', `round ${plan.roundId} asks for distributed DP without secure aggregation, which would upload the delta without noise`)
      }
      return clipForUpload(delta, privacy.clipNorm).values
    default: {
      const unknown: { mode?: unknown } = privacy
      throw new HearthError('HEARTH_ERR_UNSUPPORTED_PROTOCOL', `round ${plan.roundId} asks for privacy mode ${String(unknown.mode)}, which this client does not implement`)
    }
  }
}
