/**
 * The worker's secure-aggregation session over a comlink `MessageChannel` (STYLE.md #7), driven
 * by a real `SecAggServer`: the worker clips, quantizes and masks; the unmasked group sum is the
 * sum of the clipped, quantized deltas; replayed and tampered server messages are refused with
 * typed errors that survive the channel.
 */
import { transfer, wrap } from 'comlink'
import type { Remote } from 'comlink'
import { afterEach, describe, expect, test } from 'vitest'
import { clipL2 } from '../../protocol/clip.ts'
import { errorFromBody } from '../../protocol/errors.ts'
import type { HearthError } from '../../protocol/errors.ts'
import type { Outgoing, PlanMessage, SecAggServerMessage } from '../../protocol/secagg/messages.ts'
import { SecAggMessageType } from '../../protocol/secagg/messages.ts'
import { SecAggMode } from '../../protocol/secagg/params.ts'
import { dequantizeSum } from '../../protocol/secagg/quantize.ts'
import { SecAggServer } from '../../protocol/secagg/server.ts'
import { configureGroup } from '../../protocol/secagg/setup.ts'
import type { HearthWorkerApi } from '../../worker/api.ts'
import { createWorkerCore } from '../../worker/core.ts'
import { exposeWorkerApi } from '../../worker/expose.ts'

const LENGTH = 12
const N = 3
const QUANTIZATION = { clipNorm: 1, modulusBits: 32, maxSummands: N }
const ports: MessagePort[] = []

afterEach(() => {
  for (const port of ports.splice(0)) port.close()
})

function connect(): Remote<HearthWorkerApi> {
  const { port1, port2 } = new MessageChannel()
  ports.push(port1, port2)
  exposeWorkerApi(createWorkerCore(), port1)
  return wrap<HearthWorkerApi>(port2)
}

/** Rebuilds the `HearthError` a call through comlink rejected with. */
async function codeOf(call: Promise<unknown>): Promise<HearthError['code']> {
  try {
    await call
  } catch (error) {
    return errorFromBody(error as { code?: unknown; message?: unknown }).code
  }
  throw new Error('the call did not fail')
}

function byRecipient(outgoing: readonly Outgoing[]): Map<number, SecAggServerMessage> {
  return new Map(outgoing.map(({ to, message }) => [to, JSON.parse(JSON.stringify(message)) as SecAggServerMessage]))
}

/** A server and N workers with the plan delivered and keys advertised. */
async function group(): Promise<{ server: SecAggServer; workers: Remote<HearthWorkerApi>[]; next: Map<number, SecAggServerMessage> }> {
  const server = new SecAggServer(configureGroup({ roundId: 9, groupId: 0, mode: SecAggMode.SecAgg, groupSize: N, vectorLength: LENGTH, expectedDropout: 0 }))
  const plans = byRecipient(server.start(Date.now()))
  const workers = Array.from({ length: N }, connect)
  for (const [i, worker] of workers.entries()) {
    server.receive(i + 1, await worker.secaggBegin(plans.get(i + 1) as PlanMessage, QUANTIZATION), Date.now())
  }
  return { server, workers, next: byRecipient(await server.advance(Date.now())) }
}

/** Delivers `messages` to each worker and hands its answers to the server. */
async function exchange(server: SecAggServer, workers: readonly Remote<HearthWorkerApi>[], messages: Map<number, SecAggServerMessage>, deltas?: readonly Float32Array[]): Promise<Map<number, SecAggServerMessage>> {
  for (const [i, worker] of workers.entries()) {
    const delta = deltas?.[i]?.slice()
    const output = await worker.secaggStep(messages.get(i + 1) as SecAggServerMessage, delta === undefined ? undefined : transfer(delta, [delta.buffer]))
    if (output?.kind === 'control') server.receive(i + 1, output.message, Date.now())
    if (output?.kind === 'masked-input') server.receiveMaskedInput(i + 1, output.frame, Date.now())
  }
  return byRecipient(await server.advance(Date.now()))
}

describe("the worker's secure-aggregation session", () => {
  test('clips, quantizes and masks in the worker; the group sum unmasks to the sum of the clipped deltas', async () => {
    const { server, workers, next } = await group()
    // One delta far above the clip norm, two within it.
    const deltas = [0, 1, 2].map((k) => Float32Array.from({ length: LENGTH }, (_, i) => (k === 0 ? 3 : 0.05) * Math.sin(i + k)))
    const shares = await exchange(server, workers, next)
    const unmask = await exchange(server, workers, shares, deltas)
    expect([...unmask.values()].every((m) => m.type === SecAggMessageType.UnmaskRequest)).toBe(true)
    const results = await exchange(server, workers, unmask)
    expect([...results.values()].every((m) => m.type === SecAggMessageType.Result)).toBe(true)
    const sum = dequantizeSum(server.result().sum, N, QUANTIZATION)
    const step = 2 / Math.floor((2 ** 32 - 1) / N)
    for (let i = 0; i < LENGTH; i++) {
      let expected = 0
      for (const delta of deltas) expected += clipL2(delta, 1).values[i] as number
      expect(Math.abs((sum[i] as number) - expected)).toBeLessThanOrEqual(N * step)
    }
    for (const [i, worker] of workers.entries()) expect(await worker.secaggStep(results.get(i + 1) as SecAggServerMessage)).toBeUndefined()
  })

  test('a replayed server message is refused with HEARTH_ERR_SECAGG_REPLAY and the session carries on', async () => {
    const { server, workers, next } = await group()
    const keys = next.get(1) as SecAggServerMessage
    const shares = await exchange(server, workers, next)
    expect(await codeOf(workers[0]!.secaggStep(keys))).toBe('HEARTH_ERR_SECAGG_REPLAY')
    const deltas = workers.map(() => new Float32Array(LENGTH).fill(0.01))
    const unmask = await exchange(server, workers, shares, deltas)
    expect([...unmask.values()].every((m) => m.type === SecAggMessageType.UnmaskRequest)).toBe(true)
  })

  test('a tampered envelope is refused with HEARTH_ERR_SECAGG_TAMPERED and the worker leaves the group', async () => {
    const { server, workers, next } = await group()
    const shares = await exchange(server, workers, next)
    const message = shares.get(1) as Extract<SecAggServerMessage, { type: 'secagg/shares' }>
    const [first, ...rest] = message.envelopes
    const bytes = Buffer.from(first!.ciphertext, 'base64')
    bytes[bytes.length - 1]! ^= 1
    const tampered = { ...message, envelopes: [{ ...first!, ciphertext: bytes.toString('base64') }, ...rest] }
    const delta = new Float32Array(LENGTH)
    expect(await codeOf(workers[0]!.secaggStep(tampered, delta))).toBe('HEARTH_ERR_SECAGG_TAMPERED')
    // The session is gone: nothing more is answered for this round.
    expect(await codeOf(workers[0]!.secaggStep(message, new Float32Array(LENGTH)))).toBe('HEARTH_ERR_ROUND_CLOSED')
  })

  test('a round plan whose quantization exceeds the group input limit is refused', async () => {
    const server = new SecAggServer(configureGroup({ roundId: 3, groupId: 0, mode: SecAggMode.SecAgg, groupSize: N, vectorLength: LENGTH, expectedDropout: 0 }))
    const plan = byRecipient(server.start(Date.now())).get(1) as PlanMessage
    expect(await codeOf(connect().secaggBegin(plan, { ...QUANTIZATION, maxSummands: 2 }))).toBe('HEARTH_ERR_MALFORMED_MESSAGE')
  })

  test('distributed DP: noised shares need a group that accepts every residue of Z_2^b', async () => {
    const noise = { mode: 'distributed', clipNorm: 1, mechanism: 'discrete-gaussian', scale: 1000, localVariance: 100 } as const
    const limited = new SecAggServer(configureGroup({ roundId: 4, groupId: 0, mode: SecAggMode.SecAgg, groupSize: N, vectorLength: LENGTH, expectedDropout: 0 }))
    const plan = byRecipient(limited.start(Date.now())).get(1) as PlanMessage
    expect(await codeOf(connect().secaggBegin(plan, QUANTIZATION, noise))).toBe('HEARTH_ERR_MALFORMED_MESSAGE')
    const config = configureGroup({ roundId: 5, groupId: 0, mode: SecAggMode.SecAgg, groupSize: N, vectorLength: LENGTH, expectedDropout: 0 })
    const modular = new SecAggServer({ ...config, maxInputValue: 2 ** 32 - 1, modularInputs: true })
    const accepted = byRecipient(modular.start(Date.now())).get(1) as PlanMessage
    expect(await connect().secaggBegin(accepted, QUANTIZATION, noise)).toMatchObject({ type: 'secagg/advertise-keys' })
  })
})

