/**
 * A secure-aggregation device for aggregator tests, without a worker: a {@link TestClient} that
 * answers its group with the protocol's own `SecAggClient` and masks a delta the test chose. It
 * quantizes with rounding down (`random = () => 0`) instead of the CSPRNG's stochastic rounding,
 * so the test knows the exact integers that go into the sum, and with them the exact published
 * weights (`expectedWeights`).
 *
 * Why not `secagg-device.ts`: that device is driven one stage at a time, so a round aborted
 * under it (cluster.test.ts kills the coordinator mid-round) would leave it waiting for a stage
 * that never opens, where this one takes whatever comes until the round's result.
 */
import { SecAggClient } from '../../protocol/secagg/client.ts'
import { quantize } from '../../protocol/secagg/quantize.ts'
import type { QuantizationParams } from '../../protocol/secagg/quantize.ts'
import type { RoundPlanMessage, RoundResultMessage, ServerMessage } from '../../protocol/messages.ts'
import { AggregationMode } from '../../protocol/messages.ts'
import { dequantizeSum } from '../../protocol/secagg/quantize.ts'
import { TestClient } from './helpers.ts'

export class SecAggDevice {
  readonly client: TestClient
  readonly delta: Float32Array
  /** What this device masked in its latest round, once it did. */
  quantized: Uint32Array | undefined
  /** The quantization of its latest round. */
  params: QuantizationParams | undefined

  private constructor(client: TestClient, delta: Float32Array) {
    this.client = client
    this.delta = delta
  }

  static async join(wsUrl: string, delta: Float32Array): Promise<SecAggDevice> {
    return new SecAggDevice(await TestClient.checkedIn(wsUrl), delta)
  }

  /** Waits for a round plan (up to `timeoutMs`). */
  async plan(timeoutMs = 20_000): Promise<RoundPlanMessage> {
    return this.client.next('round-plan', () => true, timeoutMs)
  }

  /** Takes part in the round of `plan` until it ends; resolves with the round's result. */
  async run(plan: RoundPlanMessage, timeoutMs = 30_000): Promise<RoundResultMessage> {
    const aggregation = plan.aggregation
    if (aggregation?.mode !== AggregationMode.SecAgg) throw new Error('not a secure round')
    const params = { clipNorm: aggregation.clipNorm, modulusBits: aggregation.modulusBits, maxSummands: aggregation.maxSummands }
    this.params = params
    const input = quantize(this.delta, params, () => 0)
    const deadline = Date.now() + timeoutMs
    let secagg: SecAggClient | undefined
    for (;;) {
      const message = await this.#next(plan.roundId, deadline)
      if (message.type === 'round-result') return message
      if (message.type === 'secagg/plan') {
        secagg = new SecAggClient(message)
        this.client.send(await secagg.advertiseKeys())
        continue
      }
      if (secagg === undefined || !message.type.startsWith('secagg/')) continue
      const out = await secagg.handle(message, () => input)
      if (out?.kind === 'control') this.client.send(out.message)
      else if (out?.kind === 'masked-input') {
        this.quantized = input
        this.client.sendBytes(out.frame)
      }
    }
  }

  close(): void {
    this.client.close()
  }

  /** The next secure-aggregation message or round result of round `roundId`, in arrival order. */
  async #next(roundId: number, deadline: number): Promise<Extract<ServerMessage, { roundId: number }>> {
    for (;;) {
      const inbox = this.client.inbox
      const index = inbox.findIndex((m) => 'roundId' in m && m.roundId === roundId && (m.type === 'round-result' || m.type.startsWith('secagg/')))
      if (index >= 0) return inbox.splice(index, 1)[0] as Extract<ServerMessage, { roundId: number }>
      if (Date.now() > deadline) throw new Error(`round ${roundId} did not end; inbox: ${JSON.stringify(inbox)}`)
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
  }
}

/**
 * The weights FedAvg publishes from `base` and the devices whose inputs are in the sum: their
 * quantized inputs added exactly, dequantized once, divided by their count, added in float64 and
 * rounded once to float32 (`rounds/fedavg.ts`).
 */
export function expectedWeights(base: Float32Array, contributors: readonly SecAggDevice[]): Float32Array {
  const params = contributors[0]?.params
  if (params === undefined) throw new Error('no contributor masked an input')
  const sum = new Float64Array(base.length)
  for (const device of contributors) {
    const q = device.quantized
    if (q === undefined) throw new Error('a contributor masked no input')
    for (let i = 0; i < sum.length; i++) sum[i] = (sum[i] as number) + (q[i] as number)
  }
  const mean = dequantizeSum(sum, contributors.length, params)
  const next = new Float32Array(base.length)
  for (let i = 0; i < next.length; i++) next[i] = (base[i] as number) + (mean[i] as number) / contributors.length
  return next
}
