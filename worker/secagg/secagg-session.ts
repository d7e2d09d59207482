/**
 * The device's side of secure aggregation, in the worker (DESIGN.md §4: mask expansion off the
 * main thread). One `SecAggClient` per round this device is in; the page forwards each server
 * message and sends back what comes out. The federated delta is clipped to the round's L2 norm
 * (`protocol/clip.ts`), quantized into Z_{2^b} (`protocol/secagg/quantize.ts`) and masked here,
 * so the page only ever holds the masked frame. In a distributed-DP round the quantization is
 * replaced by the noised integer share (`protocol/dp/distributed-encoding.ts`), drawn here too: noise
 * sampling (bigint arithmetic, one draw per element) is as heavy as mask expansion.
 *
 * Replayed, out-of-order or tampered messages are refused by `SecAggClient` with
 * `HEARTH_ERR_SECAGG_REPLAY` / `HEARTH_ERR_SECAGG_TAMPERED`; a client that aborted is forgotten.
 */
import { clipL2 } from '../../protocol/clip.ts'
import { encodeNoisedShare } from '../../protocol/dp/distributed-encoding.ts'
import { HearthError } from '../../protocol/errors.ts'
import type { DistributedPrivacyPlan } from '../../protocol/messages.ts'
import { ClientState, SecAggClient } from '../../protocol/secagg/client.ts'
import type { AdvertiseKeysMessage, PlanMessage, SecAggClientOutput, SecAggServerMessage } from '../../protocol/secagg/messages.ts'
import { inputLimit, quantize } from '../../protocol/secagg/quantize.ts'
import type { QuantizationParams } from '../../protocol/secagg/quantize.ts'

interface Participation {
  readonly client: SecAggClient
  /** Makes the input to mask from the round's delta (or private upload). */
  readonly encode: (delta: Float32Array) => Uint32Array
}

export class SecAggSessions {
  readonly #rounds = new Map<number, Participation>()

  /**
   * Joins the group a `secagg/plan` describes and returns the AdvertiseKeys message. The round
   * plan's `quantization` must fit the group's input limit, or the group sum could wrap. With
   * `noise` (a distributed-DP round) the input is a noised share, any value of Z_{2^b}: the
   * group must accept every residue, since the plan's scale, not the input limit, keeps the sum
   * from wrapping.
   */
  async begin(plan: PlanMessage, quantization: QuantizationParams, noise?: DistributedPrivacyPlan): Promise<AdvertiseKeysMessage> {
    const client = new SecAggClient(plan)
    const { roundId, modulusBits, maxInputValue } = client.plan
    if (quantization.modulusBits !== modulusBits) {
      throw new HearthError('HEARTH_ERR_MALFORMED_MESSAGE', `round ${roundId}: the round plan says Z_2^${quantization.modulusBits}, the group Z_2^${modulusBits}`)
    }
    let encode: Participation['encode']
    if (noise === undefined) {
      if (inputLimit(quantization.modulusBits, quantization.maxSummands) > maxInputValue) {
        throw new HearthError('HEARTH_ERR_MALFORMED_MESSAGE', `round ${roundId}: quantization into Z_2^${quantization.modulusBits} for ${quantization.maxSummands} clients exceeds the group's input limit ${maxInputValue}`)
      }
      encode = (delta) => quantize(clipL2(delta, quantization.clipNorm).values, quantization)
    } else {
      if (maxInputValue !== 2 ** modulusBits - 1) {
        throw new HearthError('HEARTH_ERR_MALFORMED_MESSAGE', `round ${roundId}: distributed DP needs every value of Z_2^${modulusBits}, the group limits inputs to ${maxInputValue}`)
      }
      const encoding = { mechanism: noise.mechanism, clipNorm: quantization.clipNorm, scale: noise.scale, localVariance: noise.localVariance, modulusBits }
      encode = (delta) => encodeNoisedShare(delta, encoding)
    }
    this.abort(roundId)
    this.#rounds.set(roundId, { client, encode })
    return this.#run(roundId, client, () => client.advertiseKeys())
  }

  /**
   * Answers the next server message of a round's group. `delta` (the round's federated delta) is
   * needed for `secagg/shares`, when the masked input is made. Resolves with nothing once the
   * group ended (`secagg/result`, `secagg/abort`).
   */
  async step(message: SecAggServerMessage, delta?: Float32Array): Promise<SecAggClientOutput | undefined> {
    const participation = this.#rounds.get(message.roundId)
    if (participation === undefined) throw new HearthError('HEARTH_ERR_ROUND_CLOSED', `this device is in no secure-aggregation group of round ${message.roundId}`)
    const { client, encode } = participation
    const input = delta === undefined ? undefined : () => encode(delta)
    const output = await this.#run(message.roundId, client, () => client.handle(message, input))
    if (output === undefined) this.#rounds.delete(message.roundId)
    return output
  }

  /** Leaves a round's group and wipes its secrets (a lost socket, the round's end). */
  abort(roundId: number): void {
    this.#rounds.get(roundId)?.client.abort()
    this.#rounds.delete(roundId)
  }

  async #run<T>(roundId: number, client: SecAggClient, body: () => Promise<T>): Promise<T> {
    try {
      return await body()
    } finally {
      if (client.state === ClientState.Aborted && this.#rounds.get(roundId)?.client === client) this.#rounds.delete(roundId)
    }
  }
}
