import { describe, expect, test } from 'vitest'
import { encodeFrame, FrameKind } from '../../protocol/frames.ts'
import { HearthError } from '../../protocol/errors.ts'
import {
  ClientState,
  combineGroupSums,
  configureGroup,
  runLocalRound,
  SecAggClient,
  SecAggMessageType,
  SecAggMode,
  SecAggServer,
  SecAggStage,
  ServerState,
  splitIntoGroups,
} from '../../protocol/secagg/index.ts'
import type {
  GroupSetup,
  Outgoing,
  SecAggServerConfig,
  SecAggServerMessage,
  SharesMessage,
  UnmaskRequestMessage,
} from '../../protocol/secagg/index.ts'
import { expectCode, plainSum } from './helpers.ts'
import { seededUniform } from '../../worker/model/random.ts'

const M = 16

function setup(overrides: Partial<GroupSetup> = {}): SecAggServerConfig {
  return configureGroup({
    roundId: 42,
    groupId: 3,
    mode: SecAggMode.SecAgg,
    groupSize: 6,
    vectorLength: M,
    expectedDropout: 0.3,
    corruptFraction: 0.2,
    ...overrides,
  })
}

function inputsFor(config: SecAggServerConfig, seed = 1): Uint32Array[] {
  const random = seededUniform(seed)
  return Array.from({ length: config.parameters.groupSize }, () =>
    Uint32Array.from({ length: config.vectorLength }, () => Math.floor(random() * (config.maxInputValue + 1))),
  )
}

function wire<T>(message: T): T {
  return JSON.parse(JSON.stringify(message)) as T
}

/** Drives a group by hand up to the stage the test needs. */
class Harness {
  readonly server: SecAggServer
  readonly clients = new Map<number, SecAggClient>()
  readonly inbox = new Map<number, SecAggServerMessage[]>()
  readonly inputs: Uint32Array[]
  readonly now = Date.now()

  constructor(readonly config: SecAggServerConfig) {
    this.server = new SecAggServer(config)
    this.inputs = inputsFor(config)
    this.#deliver(this.server.start(this.now))
    for (const [to, [plan]] of this.inbox) this.clients.set(to, new SecAggClient(plan))
    this.inbox.clear()
  }

  #deliver(out: Outgoing[]): void {
    for (const { to, message } of out) {
      const list = this.inbox.get(to) ?? []
      list.push(wire(message))
      this.inbox.set(to, list)
    }
  }

  last(to: number): SecAggServerMessage {
    return (this.inbox.get(to) ?? []).at(-1) as SecAggServerMessage
  }

  async advance(): Promise<void> {
    this.inbox.clear()
    this.#deliver(await this.server.advance(this.now))
  }

  /** Runs every client through `stage` except `skip`. */
  async run(stage: SecAggStage, skip: readonly number[] = []): Promise<void> {
    for (const [u, client] of this.clients) {
      if (skip.includes(u)) continue
      if (stage === SecAggStage.AdvertiseKeys) this.server.receive(u, wire(await client.advertiseKeys()), this.now)
      else {
        const message = this.last(u)
        if (message === undefined) continue
        const reply = await client.handle(message, () => this.inputs[u - 1] as Uint32Array)
        if (reply?.kind === 'masked-input') this.server.receiveMaskedInput(u, reply.frame, this.now)
        else if (reply !== undefined) this.server.receive(u, wire(reply.message), this.now)
      }
    }
    await this.advance()
  }
}

describe('a whole group', () => {
  test.each([
    ['SecAgg', SecAggMode.SecAgg, false],
    ['SecAgg+', SecAggMode.SecAggPlus, false],
    ['SecAgg with consistency check', SecAggMode.SecAgg, true],
    ['SecAgg+ with consistency check', SecAggMode.SecAggPlus, true],
  ] as const)('%s: the unmasked sum equals the plain sum, with dropouts at every stage', async (_name, mode, consistencyCheck) => {
    const config = setup({ mode, groupSize: 24, expectedDropout: 0.3, corruptFraction: 0.05, consistencyCheck })
    const inputs = inputsFor(config)
    const dropouts = Array.from({ length: 24 }, (_, i) =>
      i === 2 ? SecAggStage.ShareKeys : i === 5 ? SecAggStage.MaskedInputCollection : i === 9 ? SecAggStage.Unmasking : i === 11 && consistencyCheck ? SecAggStage.ConsistencyCheck : undefined,
    )
    const report = await runLocalRound({ config, inputs, dropouts })
    expect(report.error).toBeUndefined()
    expect(report.completed).toBe(true)
    const survivors = report.result?.survivors ?? []
    expect(survivors).not.toContain(3)
    expect(survivors).not.toContain(6)
    expect(survivors).toContain(10) // dropped after sending its masked input: still in the sum
    expect(report.result?.sum).toEqual(plainSum(inputs, survivors, M))
    expect(report.clientErrors.size + report.serverRejections.size).toBe(0)
  })

  test('modulus b < 32: the sum is exact in Z_2^b', async () => {
    const config = setup({ modulusBits: 12, groupSize: 8 })
    const inputs = inputsFor(config)
    const report = await runLocalRound({ config, inputs, dropouts: [undefined, SecAggStage.MaskedInputCollection] })
    expect(report.completed).toBe(true)
    const sum = report.result?.sum as Uint32Array
    expect(Math.max(...sum)).toBeLessThan(2 ** 12)
    expect(sum).toEqual(plainSum(inputs, report.result?.survivors ?? [], M))
  })

  test('ChaCha20 masks give the same sums', async () => {
    const config = { ...setup(), prg: 'chacha20' as const }
    const inputs = inputsFor(config)
    const report = await runLocalRound({ config, inputs })
    expect(report.result?.sum).toEqual(plainSum(inputs, [1, 2, 3, 4, 5, 6], M))
  })

  test('below the threshold the group aborts cleanly with a reason, and every client is told', async () => {
    const config = setup({ groupSize: 6, corruptFraction: 0.34 }) // t = 3
    expect(config.parameters.threshold).toBe(3)
    const inputs = inputsFor(config)
    const mic = SecAggStage.MaskedInputCollection
    const report = await runLocalRound({ config, inputs, dropouts: [mic, mic, mic, mic, undefined, undefined] })
    expect(report.completed).toBe(false)
    expect(report.error?.code).toBe('HEARTH_ERR_SECAGG_THRESHOLD')
    expect(report.error?.message).toMatch(/only 2 clients sent masked inputs; threshold is 3/)
    expect(report.counts).toMatchObject({ planned: 6, advertised: 6, shared: 6, masked: 2 })
    const h = new Harness(config)
    await h.run(SecAggStage.AdvertiseKeys, [1, 2, 3, 4])
    expect(h.server.state).toBe(ServerState.Aborted)
    const abort = h.last(5)
    expect(abort).toMatchObject({ type: SecAggMessageType.Abort, stage: SecAggStage.AdvertiseKeys, code: 'HEARTH_ERR_SECAGG_THRESHOLD' })
    await (h.clients.get(5) as SecAggClient).handle(abort)
    expect(h.clients.get(5)?.state).toBe(ClientState.Aborted)
  })

  test('the server keeps no copy of a masked input', async () => {
    const config = setup()
    const h = new Harness(config)
    await h.run(SecAggStage.AdvertiseKeys)
    await h.run(SecAggStage.ShareKeys)
    for (const [u, client] of h.clients) {
      const frame = await client.maskInput(h.last(u), h.inputs[u - 1] as Uint32Array)
      h.server.receiveMaskedInput(u, frame, h.now)
      frame.fill(0xaa) // the transport reuses its buffer: the sum must not change
    }
    await h.advance()
    await h.run(SecAggStage.Unmasking)
    expect(h.server.result().sum).toEqual(plainSum(h.inputs, [1, 2, 3, 4, 5, 6], M))
  })
})

describe('what a client refuses', () => {
  async function atUnmasking(consistencyCheck = false): Promise<Harness> {
    const h = new Harness(setup({ groupSize: 6, consistencyCheck }))
    await h.run(SecAggStage.AdvertiseKeys)
    await h.run(SecAggStage.ShareKeys)
    await h.run(SecAggStage.MaskedInputCollection, [6])
    if (consistencyCheck) await h.run(SecAggStage.ConsistencyCheck)
    return h
  }

  test('a request for both shares of one peer is refused, and the client leaves', async () => {
    const h = await atUnmasking()
    const request = h.last(1) as UnmaskRequestMessage
    expect(request.dropped).toEqual([6])
    const client = h.clients.get(1) as SecAggClient
    await expectCode(() => client.unmask({ ...request, dropped: [6, 2] }), 'HEARTH_ERR_SECAGG_UNSAFE_REQUEST')
    expect(client.state).toBe(ClientState.Aborted)
    await expectCode(() => client.unmask(request), 'HEARTH_ERR_ROUND_ABORTED')
  })

  test('a second unmasking request, even a different one, is refused as a replay', async () => {
    const h = await atUnmasking()
    const request = h.last(1) as UnmaskRequestMessage
    const client = h.clients.get(1) as SecAggClient
    const reply = client.unmask(request)
    expect(reply.keyShares.map((s) => s.of)).toEqual([6])
    expect(reply.selfMaskShares.map((s) => s.of).sort()).toEqual([1, 2, 3, 4, 5])
    // Now ask for 2's key share as if 2 had dropped: that would unmask 2's input.
    await expectCode(() => client.unmask({ ...request, survivors: [3, 4, 5], dropped: [2, 6] }), 'HEARTH_ERR_SECAGG_REPLAY')
  })

  test('with the consistency check, a request that contradicts the signed survivors is refused', async () => {
    const h = await atUnmasking(true)
    const request = h.last(1) as UnmaskRequestMessage
    expect(request.signatures?.length).toBe(4)
    const client = h.clients.get(1) as SecAggClient
    await expectCode(() => client.unmask({ ...request, survivors: [3, 4, 5], dropped: [2, 6] }), 'HEARTH_ERR_SECAGG_UNSAFE_REQUEST')
    const other = h.clients.get(2) as SecAggClient
    const forged = { ...(h.last(2) as UnmaskRequestMessage) }
    const signatures = (forged.signatures ?? []).map((s, i) => (i === 0 ? { ...s, signature: (forged.signatures?.[1]?.signature ?? '') } : s))
    await expectCode(() => other.unmask({ ...forged, signatures }), 'HEARTH_ERR_SECAGG_TAMPERED')
  })

  test('a tampered envelope is rejected with HEARTH_ERR_SECAGG_TAMPERED', async () => {
    const h = new Harness(setup())
    await h.run(SecAggStage.AdvertiseKeys)
    await h.run(SecAggStage.ShareKeys)
    const shares = h.last(1) as SharesMessage
    const envelope = shares.envelopes[0] as SharesMessage['envelopes'][number]
    const bytes = Buffer.from(envelope.ciphertext, 'base64')
    bytes[20] = (bytes[20] as number) ^ 0x01
    const tampered = { ...shares, envelopes: [{ ...envelope, ciphertext: bytes.toString('base64') }, ...shares.envelopes.slice(1)] }
    await expectCode(() => h.clients.get(1)?.maskInput(tampered, h.inputs[0] as Uint32Array), 'HEARTH_ERR_SECAGG_TAMPERED')
    // An envelope passed off as another sender's fails too (AAD binds sender and recipient).
    const swapped = { ...(h.last(2) as SharesMessage) }
    const [a, b] = swapped.envelopes as [SharesMessage['envelopes'][number], SharesMessage['envelopes'][number]]
    const mixed = { ...swapped, envelopes: [{ ...a, ciphertext: b.ciphertext }, { ...b, ciphertext: a.ciphertext }, ...swapped.envelopes.slice(2)] }
    await expectCode(() => h.clients.get(2)?.maskInput(mixed, h.inputs[1] as Uint32Array), 'HEARTH_ERR_SECAGG_TAMPERED')
  })

  test('replayed messages are rejected with typed errors, and the client carries on', async () => {
    const h = new Harness(setup())
    await h.run(SecAggStage.AdvertiseKeys)
    const keys = h.last(1)
    const client = h.clients.get(1) as SecAggClient
    const reply = await client.shareKeys(keys)
    await expectCode(() => client.shareKeys(keys), 'HEARTH_ERR_SECAGG_REPLAY')
    await expectCode(() => client.shareKeys({ ...keys, roundId: 41 }), 'HEARTH_ERR_SECAGG_REPLAY')
    expect(client.state).toBe(ClientState.KeysShared)
    h.server.receive(1, wire(reply), h.now)
    await expectCode(() => h.server.receive(1, wire(reply), h.now), 'HEARTH_ERR_SECAGG_REPLAY')
    await expectCode(() => h.server.receive(2, { ...wire(reply), roundId: 7 }, h.now), 'HEARTH_ERR_SECAGG_REPLAY')
    await expectCode(() => h.server.receive(2, wire(reply), h.now + 10 * 60_000), 'HEARTH_ERR_LATE_UPLOAD')
  })

  test('an envelope replayed from an earlier round does not open', async () => {
    const config = setup()
    const first = new Harness(config)
    await first.run(SecAggStage.AdvertiseKeys)
    await first.run(SecAggStage.ShareKeys)
    const old = first.last(1) as SharesMessage
    const second = new Harness({ ...config, roundId: 43 })
    await second.run(SecAggStage.AdvertiseKeys)
    await second.run(SecAggStage.ShareKeys)
    const fresh = second.last(1) as SharesMessage
    const replayed = { ...fresh, envelopes: fresh.envelopes.map((e, i) => ({ ...e, ciphertext: (old.envelopes[i] as { ciphertext: string }).ciphertext })) }
    await expectCode(() => second.clients.get(1)?.maskInput(replayed, second.inputs[0] as Uint32Array), 'HEARTH_ERR_SECAGG_TAMPERED')
  })
})

describe('what the server refuses', () => {
  test('masked inputs: wrong round, wrong length, repeated, from a dropped client, out of stage', async () => {
    const config = setup({ modulusBits: 16 })
    const h = new Harness(config)
    const early = encodeFrame({ kind: FrameKind.MaskedUpdate, id: 42, values: new Uint32Array(M) })
    await expectCode(() => h.server.receiveMaskedInput(1, early, h.now), 'HEARTH_ERR_SECAGG_REPLAY')
    await h.run(SecAggStage.AdvertiseKeys)
    await h.run(SecAggStage.ShareKeys, [6])
    await expectCode(() => h.server.receiveMaskedInput(6, early, h.now), 'HEARTH_ERR_ROUND_CLOSED')
    const wrongRound = encodeFrame({ kind: FrameKind.MaskedUpdate, id: 41, values: new Uint32Array(M) })
    await expectCode(() => h.server.receiveMaskedInput(1, wrongRound, h.now), 'HEARTH_ERR_SECAGG_REPLAY')
    const short = encodeFrame({ kind: FrameKind.MaskedUpdate, id: 42, values: new Uint32Array(M - 1) })
    await expectCode(() => h.server.receiveMaskedInput(1, short, h.now), 'HEARTH_ERR_VECTOR_LENGTH')
    const big = encodeFrame({ kind: FrameKind.MaskedUpdate, id: 42, values: new Uint32Array(M).fill(2 ** 16) })
    await expectCode(() => h.server.receiveMaskedInput(1, big, h.now), 'HEARTH_ERR_VECTOR_VALUE')
    const plain = encodeFrame({ kind: FrameKind.Update, id: 42, values: new Float32Array(M) })
    await expectCode(() => h.server.receiveMaskedInput(1, plain, h.now), 'HEARTH_ERR_MALFORMED_FRAME')
    const frame = await (h.clients.get(1) as SecAggClient).maskInput(h.last(1), h.inputs[0] as Uint32Array)
    h.server.receiveMaskedInput(1, frame, h.now)
    await expectCode(() => h.server.receiveMaskedInput(1, frame, h.now), 'HEARTH_ERR_DUPLICATE_UPLOAD')
    await expectCode(() => h.server.receive(7, {}, h.now), 'HEARTH_ERR_MALFORMED_MESSAGE')
  })

  test('share-keys must address exactly the neighbours whose keys were forwarded', async () => {
    const h = new Harness(setup())
    await h.run(SecAggStage.AdvertiseKeys)
    const reply = await (h.clients.get(1) as SecAggClient).shareKeys(h.last(1))
    await expectCode(() => h.server.receive(1, { ...reply, envelopes: reply.envelopes.slice(1) }, h.now), 'HEARTH_ERR_MALFORMED_MESSAGE')
    await expectCode(() => h.server.receive(2, wire(reply), h.now), 'HEARTH_ERR_MALFORMED_MESSAGE')
  })

  test('the client checks its input range, so the group sum cannot wrap', async () => {
    const config = setup()
    const h = new Harness(config)
    await h.run(SecAggStage.AdvertiseKeys)
    await h.run(SecAggStage.ShareKeys)
    const input = new Uint32Array(M).fill(config.maxInputValue + 1)
    await expectCode(() => h.clients.get(1)?.maskInput(h.last(1), input), 'HEARTH_ERR_VECTOR_VALUE')
  })
})

describe('large cohorts as groups', () => {
  test('groups are balanced; sums of completed groups are added; a group below t contributes nothing', async () => {
    const groups = splitIntoGroups(Array.from({ length: 23 }, (_, i) => i), 8)
    expect(groups.map((g) => g.length)).toEqual([8, 8, 7])
    expect(new Set(groups.flat()).size).toBe(23)

    const outcomes = []
    const expected = new Float64Array(M)
    let contributors = 0
    for (const [g, members] of groups.entries()) {
      const config = setup({ groupId: g, groupSize: members.length, corruptFraction: 0.3 })
      const inputs = inputsFor(config, g + 10)
      const mic = SecAggStage.MaskedInputCollection
      const dropouts = g === 1 ? members.map((_, i) => (i < 6 ? mic : undefined)) : [mic]
      const report = await runLocalRound({ config, inputs, dropouts })
      if (report.completed) {
        const s = plainSum(inputs, report.result?.survivors ?? [], M)
        s.forEach((v, i) => (expected[i] = (expected[i] as number) + v))
        contributors += report.result?.survivors.length ?? 0
      }
      outcomes.push({ groupId: g, clients: members.length, ...(report.result ? { sum: report.result.sum, survivors: report.result.survivors.length } : {}), ...(report.error ? { error: report.error } : {}) })
    }
    const combined = combineGroupSums(outcomes, M)
    expect(combined.groups.map((g) => [g.clients, g.survivors, g.contributed])).toEqual([
      [8, 7, true],
      [8, 0, false],
      [7, 6, true],
    ])
    expect(combined.groups[1]?.reason).toMatch(/threshold/)
    expect(combined.contributors).toBe(contributors)
    expect(combined.sum).toEqual(expected)
  })
})

test('a stage closes early once every client still expected has answered or disconnected', async () => {
  const server = new SecAggServer(setup({ groupSize: 3, expectedDropout: 0, corruptFraction: 0 }))
  const plans = server.start(Date.now())
  const clients = plans.map(({ message }) => new SecAggClient(JSON.parse(JSON.stringify(message))))
  server.receive(1, await clients[0]!.advertiseKeys(), Date.now())
  server.receive(2, await clients[1]!.advertiseKeys(), Date.now())
  expect(server.stageComplete).toBe(false)
  server.disconnected(3)
  server.disconnected(99) // not in the group: ignored
  expect(server.stageComplete).toBe(true)
  await server.advance(Date.now())
  expect(server.state).toBe(ServerState.ShareKeys)
  expect(server.stageComplete).toBe(false)
  server.disconnected(2)
  expect(server.stageComplete).toBe(false) // client 1 may still answer
  server.disconnected(1)
  expect(server.stageComplete).toBe(true)
})

test('HearthError codes used here are in the catalogue', () => {
  for (const code of ['HEARTH_ERR_SECAGG_THRESHOLD', 'HEARTH_ERR_SECAGG_TAMPERED', 'HEARTH_ERR_SECAGG_REPLAY', 'HEARTH_ERR_SECAGG_UNSAFE_REQUEST'] as const) {
    expect(new HearthError(code).statusCode).toBeGreaterThan(0)
  }
})
