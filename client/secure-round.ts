/**
 * This device's part in one secure-aggregation round, on the page side: it forwards the group's
 * messages to the worker, in order, and sends what the worker answers. The worker holds the
 * secrets and does the clipping, quantization and masking (`worker/secagg/secagg-session.ts`);
 * the page only ever sees public keys, sealed envelopes and the masked frame.
 */
import { transfer } from 'comlink'
import { FRAME_HEADER_BYTES } from '../protocol/frames.ts'
import type { ClientMessage, DistributedPrivacyPlan, SecureAggregationPlan } from '../protocol/messages.ts'
import type { SecAggServerMessage } from '../protocol/secagg/messages.ts'
import { SecAggMessageType } from '../protocol/secagg/messages.ts'
import type { HearthWorkerApi } from '../worker/api.ts'

export interface SecureRoundOptions {
  readonly roundId: number
  readonly plan: SecureAggregationPlan
  /** A distributed-DP round's noise, which the worker adds before masking. */
  readonly noise?: DistributedPrivacyPlan
  /**
   * What to mask, once trained: the federated delta, or with DP the private upload
   * (clipped delta and indicator). Rejects when training failed.
   */
  readonly delta: Promise<Float32Array>
  readonly worker: HearthWorkerApi
  readonly sendMessage: (message: ClientMessage) => void
  readonly sendBinary: (bytes: Uint8Array) => void
  /** The masked input went out; `elements` is its length. */
  readonly onMasked: (elements: number) => void
  readonly onError: (error: unknown) => void
}

export class SecureRound {
  readonly #o: SecureRoundOptions
  /** Messages are answered one at a time, in the order they arrived. */
  #chain: Promise<void> = Promise.resolve()
  /** After a failure the worker has left the group: later messages are ignored. */
  #failed = false

  constructor(options: SecureRoundOptions) {
    this.#o = options
    // Training may fail before the group needs the delta; the error is reported then.
    options.delta.catch(() => undefined)
  }

  handle(message: SecAggServerMessage): void {
    this.#chain = this.#chain.then(async () => {
      if (this.#failed) return
      try {
        await this.#answer(message)
      } catch (error) {
        this.#failed = true
        this.#o.onError(error)
        await this.#o.worker.secaggAbort(this.#o.roundId).catch(() => undefined)
      }
    })
  }

  /** Leaves the group (the round ended or the device stopped) and wipes the worker's secrets. */
  abort(): Promise<void> {
    // At once, not after the chain: an answer still being computed must not be sent.
    this.#failed = true
    // Nothing to report if the worker is already gone: its secrets went with it.
    return this.#chain.then(() => this.#o.worker.secaggAbort(this.#o.roundId)).catch(() => undefined)
  }

  async #answer(message: SecAggServerMessage): Promise<void> {
    const { worker, plan } = this.#o
    if (message.type === SecAggMessageType.Plan) {
      const { clipNorm, modulusBits, maxSummands } = plan
      const answer = await worker.secaggBegin(message, { clipNorm, modulusBits, maxSummands }, this.#o.noise)
      if (!this.#failed) this.#o.sendMessage(answer)
      return
    }
    let output
    if (message.type === SecAggMessageType.Shares) {
      const delta = await this.#o.delta
      output = await worker.secaggStep(message, transfer(delta, [delta.buffer]))
    } else {
      output = await worker.secaggStep(message)
    }
    if (output === undefined || this.#failed) return
    if (output.kind === 'control') {
      this.#o.sendMessage(output.message)
      return
    }
    this.#o.sendBinary(output.frame)
    this.#o.onMasked((output.frame.byteLength - FRAME_HEADER_BYTES) / 4)
  }
}
