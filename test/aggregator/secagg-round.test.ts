/**
 * Secure-aggregation rounds over real sockets on 127.0.0.1: real Hearth clients in Node
 * (`createHearth` with the worker core, which clips, quantizes and masks), a real aggregator.
 * The published model is checked against base + the mean of the survivors' clipped deltas,
 * captured on the client side before they entered the worker's secure-aggregation session;
 * dropouts are injected at each stage by closing a device's socket right after it sent a
 * given message.
 */
import { describe, expect, test } from 'vitest'
import { WebSocket } from 'ws'
import type { RoundOptions } from '../../aggregator/options.ts'
import type { RoundRecord } from '../../aggregator/store/store.ts'
import { MemoryStore } from '../../aggregator/store/memory-store.ts'
import { createHearth } from '../../client/hearth.ts'
import type { Hearth } from '../../client/hearth.ts'
import { simulatedUser } from '../../demo/catalog.ts'
import { clipL2, l2Norm } from '../../protocol/clip.ts'
import { decodeFrame, FrameKind } from '../../protocol/frames.ts'
import { distributedDpEvent, planDistributedDp, RdpAccountant } from '../../protocol/dp/index.ts'
import type { PrivacyEvent } from '../../protocol/dp/index.ts'
import { inputLimit } from '../../protocol/secagg/quantize.ts'
import type { HearthWorkerApi } from '../../worker/api.ts'
import { createWorkerCore } from '../../worker/core.ts'
import { transferringApi } from '../../worker/expose.ts'
import { MemoryDeviceStore } from '../../worker/store/memory-store.ts'
import { APP_KEY, eventually, fetchWeights, getJson, TINY, TINY_LENGTH, useApp } from './helpers.ts'
import type { RunningApp } from './helpers.ts'

const CLIP_NORM = 0.5

/** After which message a device closes its socket (it then drops out of the group). */
type DropAfter = 'secagg/advertise-keys' | 'secagg/share-keys' | 'masked-input' | undefined

/** Where the aggregator placed a device: from its `secagg/plan`. */
interface Placement {
  readonly groupId: number
  readonly index: number
}

/**
 * Decides, after each message a device sent, whether it leaves now; or `replay`: it sends the
 * message again; or `stall`: it stays connected but sends nothing more.
 */
type DropRule = (sent: string, placement: Placement | undefined) => boolean | 'replay' | 'stall'

const dropAfter =
  (type: DropAfter): DropRule =>
  (sent) =>
    sent === type

interface Device {
  readonly hearth: Hearth
  /** The federated delta the worker trained, per round, before anything was done to it. */
  readonly deltas: Map<number, Float32Array>
  /** Message types this device sent (`masked-input` for the binary frame). */
  readonly sent: string[]
  /** Where the aggregator placed it, once its `secagg/plan` arrived. */
  readonly seen: { placement?: Placement }
  /** Error codes the client reported. */
  readonly errors: string[]
}

const server = useApp()

function secureRounds(overrides: RoundOptions = {}): RoundOptions {
  return {
    minCohort: 3,
    selectionTimeoutMs: 60_000,
    uploadTimeoutMs: 20_000,
    pauseMs: 600_000, // one round per test
    training: { epochs: 1, batchSize: 16, learningRate: 0.5, maxExamples: 200 },
    aggregation: 'secagg',
    ...overrides,
    secagg: {
      variant: 'secagg',
      stageTimeoutsMs: { 'advertise-keys': 5_000, 'share-keys': 5_000, unmasking: 5_000 },
      // With central DP the privacy clip norm applies.
      ...(overrides.privacy === undefined ? { clipNorm: CLIP_NORM } : {}),
      ...overrides.secagg,
    },
  }
}

/** A socket that records what it sends and closes itself when `drop` says so. */
function recordingSocket(url: string, sent: string[], seen: Device['seen'], drop: DropRule): WebSocket {
  const socket = new WebSocket(url)
  const send = socket.send.bind(socket) as (data: unknown) => void
  let dropped = false
  socket.on('message', (data, isBinary) => {
    const message = isBinary ? undefined : (JSON.parse(String(data)) as { type: string; groupId: number; index: number })
    if (message?.type === 'secagg/plan') seen.placement = { groupId: message.groupId, index: message.index }
  })
  socket.send = ((data: unknown) => {
    if (dropped) return
    const type = typeof data === 'string' ? (JSON.parse(data) as { type: string }).type : 'masked-input'
    if (data instanceof Uint8Array) expect(decodeFrame(data).kind).toBe(FrameKind.MaskedUpdate)
    sent.push(type)
    send(data)
    const rule = drop(type, seen.placement)
    if (rule === 'replay') send(data)
    else if (rule === 'stall') dropped = true
    else if (rule) {
      dropped = true
      socket.close()
    }
  }) as WebSocket['send']
  return socket
}

async function startDevice(url: string, seed: number, drop: DropRule = () => false): Promise<Device> {
  const deltas = new Map<number, Float32Array>()
  const sent: string[] = []
  const seen: Device['seen'] = {}
  const core = createWorkerCore({ openStore: async () => new MemoryDeviceStore(), seed })
  const worker: HearthWorkerApi = {
    ...transferringApi(core),
    trainRound: async (request) => {
      const result = await core.trainRound(request)
      deltas.set(result.roundId, result.delta.slice())
      return result
    },
  }
  const hearth = await createHearth(
    { aggregatorUrl: url, appKey: APP_KEY, model: TINY.name, backends: ['cpu'], dbName: `secagg-${seed}`, training: false },
    {
      worker,
      // Only the first connection: a device that dropped out stays out.
      createSocket: (socketUrl) => (sent.length === 0 ? recordingSocket(socketUrl, sent, seen, drop) : new WebSocket('ws://127.0.0.1:1')),
      fetch: (input, init) => fetch(input, init),
    },
  )
  const user = simulatedUser(seed)
  for (let i = 0; i < 60; i++) hearth.record(user.next())
  await hearth.flush()
  const errors: string[] = []
  hearth.addEventListener('error', (event) => errors.push(event.detail.error.code))
  server.track(hearth)
  return { hearth, deltas, sent, seen, errors }
}

async function roundRecord(app: RunningApp, predicate: (r: RoundRecord) => boolean): Promise<RoundRecord> {
  let record: RoundRecord | undefined
  await eventually(
    async () => {
      const { body } = await getJson<{ rounds: RoundRecord[] }>(app.url, `/admin/rounds?model=${TINY.name}`)
      record = body.rounds.find(predicate)
      return record !== undefined
    },
    20_000,
    'the round to end',
  )
  return record as RoundRecord
}

/**
 * Checks version 2 = version 1 + mean of `contributors`' clipped deltas. Quantization rounds
 * each coordinate to a grid of step 2C/L (stochastically), so the mean moves by at most one
 * step; float32 rounding of the weights adds one ulp.
 */
async function expectMeanOfClipped(app: RunningApp, roundId: number, contributors: readonly Device[], maxSummands: number): Promise<void> {
  const before = (await fetchWeights(app.url, TINY.name, 1)).values
  const after = (await fetchWeights(app.url, TINY.name, 2)).values
  const clipped = contributors.map((d) => clipL2(d.deltas.get(roundId) as Float32Array, CLIP_NORM).values)
  const step = (2 * CLIP_NORM) / inputLimit(32, maxSummands)
  let moved = 0
  for (let i = 0; i < before.length; i++) {
    let sum = 0
    for (const delta of clipped) sum += delta[i] as number
    const expected = (before[i] as number) + sum / clipped.length
    const tolerance = step + 2 ** -23 * Math.max(1, Math.abs(expected))
    expect(Math.abs((after[i] as number) - expected), `element ${i}`).toBeLessThanOrEqual(tolerance)
    if (Math.abs(sum) > 1e-6) moved++
  }
  expect(moved).toBeGreaterThan(0) // real training, not zeros
}

describe('secure aggregation in real rounds', () => {
  test('five devices: the aggregator publishes base + the mean of their clipped deltas, and records the group', async () => {
    const running = await server.start({ store: new MemoryStore(), rounds: secureRounds({ maxCohort: 5 }) })
    // The first device sends its AdvertiseKeys message twice: the replay is refused, typed.
    const replay: DropRule = (sent) => (sent === 'secagg/advertise-keys' ? 'replay' : false)
    const group = await Promise.all([1, 2, 3, 4, 5].map((seed) => startDevice(running.url, seed, seed === 1 ? replay : undefined)))
    const record = await roundRecord(running, (r) => r.outcome !== null)
    expect(record).toMatchObject({ outcome: 'published', publishedVersion: 2, participants: 5, uploadsAccepted: 5, config: { strategy: 'secure-sum(secagg)' } })
    expect(record.rejections).toEqual({ HEARTH_ERR_SECAGG_REPLAY: 1 })
    expect(group[0]!.errors).toEqual(['HEARTH_ERR_SECAGG_REPLAY'])
    expect(record.secagg).toMatchObject({ variant: 'secagg', clipNorm: CLIP_NORM, modulusBits: 32, maxSummands: 5 })
    expect(record.secagg?.groups).toEqual([
      { groupId: 0, clients: 5, degree: 4, threshold: 2, state: 'completed', advertised: 5, shared: 5, masked: 5, unmasked: 5, survivors: 5, contributed: true, reason: null },
    ])
    await expectMeanOfClipped(running, record.id, group, 5)
    for (const device of group) {
      expect(device.sent).toEqual(['checkin', 'secagg/advertise-keys', 'secagg/share-keys', 'masked-input', 'secagg/unmask-shares'])
      await expect.poll(() => device.hearth.modelVersion, { timeout: 10_000 }).toBe(2)
    }
  })

  test('dropouts after AdvertiseKeys, after ShareKeys and after the masked input: the survivors still publish', async () => {
    const running = await server.start({ store: new MemoryStore(), rounds: secureRounds({ maxCohort: 6 }) })
    const drops: DropAfter[] = [undefined, undefined, undefined, 'secagg/advertise-keys', 'secagg/share-keys', 'masked-input']
    const group = await Promise.all(drops.map((drop, i) => startDevice(running.url, 10 + i, dropAfter(drop))))
    const record = await roundRecord(running, (r) => r.outcome !== null)
    expect(record.outcome, record.reason ?? '').toBe('published')
    expect(record.secagg?.groups).toEqual([
      { groupId: 0, clients: 6, degree: 5, threshold: 2, state: 'completed', advertised: 6, shared: 5, masked: 4, unmasked: 3, survivors: 4, contributed: true, reason: null },
    ])
    // The input of the device that left after masking is in the sum: its self mask was removed
    // with its neighbours' shares. The two that left earlier contribute nothing.
    await expectMeanOfClipped(running, record.id, [group[0]!, group[1]!, group[2]!, group[5]!], 6)
    expect(group[3]!.sent).toEqual(['checkin', 'secagg/advertise-keys'])
    expect(group[4]!.sent).toEqual(['checkin', 'secagg/advertise-keys', 'secagg/share-keys'])
  })

  test('below the threshold the round aborts with the reason on record, and publishes nothing', async () => {
    // γ = 0.5 of 4 clients may be corrupt, so t = 3; two dropouts leave 2.
    const running = await server.start({ store: new MemoryStore(), rounds: secureRounds({ maxCohort: 4, secagg: { corruptFraction: 0.5, expectedDropout: 0 } }) })
    const drops: DropAfter[] = [undefined, undefined, 'secagg/advertise-keys', 'secagg/advertise-keys']
    await Promise.all(drops.map((drop, i) => startDevice(running.url, 20 + i, dropAfter(drop))))
    const record = await roundRecord(running, (r) => r.outcome !== null)
    expect(record.outcome).toBe('aborted')
    expect(record.publishedVersion).toBeNull()
    expect(record.reason).toContain('HEARTH_ERR_SECAGG_THRESHOLD')
    expect(record.secagg?.groups[0]).toMatchObject({ clients: 4, threshold: 3, state: 'aborted', advertised: 4, survivors: 0, contributed: false })
    expect((await fetchWeights(running.url, TINY.name, 'latest')).version).toBe(1)
  })

  test('a large cohort runs in groups; a group that falls below t contributes nothing, the others publish', async () => {
    // Ten devices in groups of at most five; γ = 0.4 of 5 may be corrupt, so t = 3 in each.
    const running = await server.start({ store: new MemoryStore(), rounds: secureRounds({ maxCohort: 10, secagg: { maxGroupSize: 5, corruptFraction: 0.4, expectedDropout: 0 } }) })
    // In group 1, clients 1 to 3 leave after AdvertiseKeys: 2 remain, below t.
    const leave: DropRule = (sent, placement) => sent === 'secagg/advertise-keys' && placement?.groupId === 1 && placement.index <= 3
    const cohort = await Promise.all(Array.from({ length: 10 }, (_, i) => startDevice(running.url, 40 + i, leave)))
    const record = await roundRecord(running, (r) => r.outcome !== null)
    expect(record.outcome, record.reason ?? '').toBe('published')
    expect(record.secagg?.maxSummands).toBe(5)
    const [first, second] = record.secagg?.groups ?? []
    expect(first).toMatchObject({ groupId: 0, clients: 5, threshold: 3, state: 'completed', survivors: 5, contributed: true, reason: null })
    expect(second).toMatchObject({ groupId: 1, clients: 5, threshold: 3, state: 'aborted', advertised: 5, survivors: 0, contributed: false })
    expect(second?.reason).toContain('HEARTH_ERR_SECAGG_THRESHOLD')
    const groupZero = cohort.filter((d) => d.seen.placement?.groupId === 0)
    expect(groupZero).toHaveLength(5)
    await expectMeanOfClipped(running, record.id, groupZero, 5)
  })

  test('SecAgg+ with the consistency check: the survivors sign U3, and a device that left after masking still counts', async () => {
    const running = await server.start({ store: new MemoryStore(), rounds: secureRounds({ maxCohort: 5, secagg: { variant: 'secagg+', consistencyCheck: true } }) })
    const drops: DropAfter[] = [undefined, undefined, undefined, undefined, 'masked-input']
    const cohort = await Promise.all(drops.map((drop, i) => startDevice(running.url, 60 + i, dropAfter(drop))))
    const record = await roundRecord(running, (r) => r.outcome !== null)
    expect(record.outcome, record.reason ?? '').toBe('published')
    expect(record.config.strategy).toBe('secure-sum(secagg+)')
    expect(record.secagg?.groups[0]).toMatchObject({ clients: 5, masked: 5, unmasked: 4, survivors: 5, contributed: true })
    expect(cohort[0]!.sent).toEqual(['checkin', 'secagg/advertise-keys', 'secagg/share-keys', 'masked-input', 'secagg/consistency-signature', 'secagg/unmask-shares'])
    await expectMeanOfClipped(running, record.id, cohort, 5)
  })

  test('central DP over secure aggregation: noise on the unmasked sum, the fixed denominator, the clipped count, a ledger entry', async () => {
    // Little noise (z = 0.01), so the published mean can be checked; the budget is set to allow it.
    const privacy = { mode: 'central' as const, clipNorm: CLIP_NORM, noiseMultiplier: 0.01, budget: { epsilon: 1e6, delta: 1e-6 } }
    const running = await server.start({ store: new MemoryStore(), rounds: secureRounds({ maxCohort: 4, privacy }) })
    const cohort = await Promise.all([70, 71, 72, 73].map((seed) => startDevice(running.url, seed)))
    const record = await roundRecord(running, (r) => r.outcome !== null)
    expect(record.outcome, record.reason ?? '').toBe('published')
    expect(record.config.strategy).toBe('central-dp(secure-sum(secagg))')
    const deltas = cohort.map((d) => d.deltas.get(record.id) as Float32Array)
    const clipped = deltas.filter((delta) => l2Norm(delta) > CLIP_NORM).length
    expect(record.privacy).toMatchObject({ clipNorm: CLIP_NORM, denominator: 4, clipping: { uploads: 4, clippedCount: clipped, noised: false } })
    expect(record.privacy?.trustAssumption).toContain('secure aggregation')
    // Devices upload the clipped delta and its indicator: quantized on √(C² + ¼).
    expect(record.secagg?.clipNorm).toBeCloseTo(Math.hypot(CLIP_NORM, 0.5), 12)
    const { body: ledger } = await getJson<{ entries: unknown[] }>(running.url, `/admin/models/${TINY.name}/ledger`)
    expect(ledger.entries).toHaveLength(1)

    const before = (await fetchWeights(running.url, TINY.name, 1)).values
    const after = (await fetchWeights(running.url, TINY.name, 2)).values
    const sigma = privacy.noiseMultiplier * CLIP_NORM
    for (let i = 0; i < before.length; i++) {
      let sum = 0
      for (const delta of deltas) sum += clipL2(delta, CLIP_NORM).values[i] as number
      // base + (Σ + N(0, σ²)) / m: within 6σ/m of the noiseless value.
      expect(Math.abs((after[i] as number) - ((before[i] as number) + sum / 4)), `element ${i}`).toBeLessThan((6 * sigma) / 4)
    }
  })

  test('an aggregator that stops mid-round ends the secure round without a sum and records why', async () => {
    const store = new MemoryStore()
    const running = await server.start({ store, rounds: secureRounds({ maxCohort: 3, secagg: { stageTimeoutsMs: { 'share-keys': 60_000 } } }) })
    // The third device goes silent after AdvertiseKeys, so ShareKeys waits for its deadline.
    const stall: DropRule = (sent) => (sent === 'secagg/advertise-keys' ? 'stall' : false)
    const cohort = await Promise.all([80, 81, 82].map((seed) => startDevice(running.url, seed, seed === 82 ? stall : undefined)))
    await eventually(() => cohort.slice(0, 2).every((d) => d.sent.includes('secagg/share-keys')), 20_000, 'the others to share their keys')
    await running.close()
    const [round] = await store.listRounds({ limit: 1 })
    expect(round).toMatchObject({ outcome: 'aborted', publishedVersion: null })
    expect(round?.reason).toContain('aggregator shutting down')
    expect(round?.secagg?.groups[0]).toMatchObject({ clients: 3, state: 'aborted', advertised: 3, shared: null, contributed: false })
  })

  test('a device that goes silent without disconnecting: the stage closes at its deadline and the others publish', async () => {
    const running = await server.start({ store: new MemoryStore(), rounds: secureRounds({ maxCohort: 4, secagg: { stageTimeoutsMs: { 'masked-input-collection': 8_000 } } }) })
    const stall: DropRule = (sent) => (sent === 'secagg/share-keys' ? 'stall' : false)
    const cohort = await Promise.all([90, 91, 92, 93].map((seed) => startDevice(running.url, seed, seed === 93 ? stall : undefined)))
    const record = await roundRecord(running, (r) => r.outcome !== null)
    expect(record.outcome, record.reason ?? '').toBe('published')
    expect(record.secagg?.groups[0]).toMatchObject({ clients: 4, shared: 4, masked: 3, survivors: 3, contributed: true })
    await expectMeanOfClipped(running, record.id, cohort.slice(0, 3), 4)
  })
})

describe('distributed DP in real secure rounds', () => {
  const budget = { epsilon: 1e6, delta: 1e-6 }

  test('devices add discrete-Gaussian shares before masking: the published model is base + (noised sum)/m, the noise as planned, a ledger entry', async () => {
    // 4 devices, minCohort 3: minSurvivors = ⌈0.9 · 3⌉ = 3, so 3 − 1 = 2 honest shares are accounted.
    const privacy = { mode: 'distributed' as const, clipNorm: CLIP_NORM, noiseMultiplier: 1, budget }
    const running = await server.start({ store: new MemoryStore(), rounds: secureRounds({ maxCohort: 4, privacy }) })
    const cohort = await Promise.all([100, 101, 102, 103].map((seed) => startDevice(running.url, seed)))
    const record = await roundRecord(running, (r) => r.outcome !== null)
    expect(record.outcome, record.reason ?? '').toBe('published')
    expect(record.config.strategy).toBe('distributed-dp(secure-sum(secagg))')
    expect(record.secagg?.groups[0]).toMatchObject({ clients: 4, survivors: 4, contributed: true })

    // The plan, made independently: the private upload (d + indicator, norm √(C² + ¼)) in Z_2^32.
    const uploadNorm = Math.hypot(CLIP_NORM, 0.5)
    const plan = planDistributedDp({ mechanism: 'discrete-gaussian', bits: 32, maxClients: 4, noisyClients: 2, clipNorm: uploadNorm, dim: TINY_LENGTH + 1, noiseMultiplier: 1 })
    const event = distributedDpEvent(plan, 1)
    expect(record.privacy).toMatchObject({ mode: 'distributed', clipNorm: CLIP_NORM, denominator: 4, event, clipping: { uploads: 4, clippedCount: null, noised: true } })
    expect(record.privacy?.trustAssumption).toContain('noise')
    const { body: ledger } = await getJson<{ entries: { event: PrivacyEvent; epsilon: number; mode: string }[] }>(running.url, `/admin/models/${TINY.name}/ledger`)
    expect(ledger.entries).toHaveLength(1)
    expect(ledger.entries[0]?.event).toEqual(event)
    const accountant = new RdpAccountant()
    accountant.compose(event)
    expect(ledger.entries[0]?.epsilon).toBeCloseTo(accountant.epsilonAndOrder(budget.delta).epsilon, 9)

    // (published − base)·m − Σ clipped = the devices' noise (and rounding): χ² with d degrees of freedom.
    const before = (await fetchWeights(running.url, TINY.name, 1)).values
    const after = (await fetchWeights(running.url, TINY.name, 2)).values
    const variance = (4 * plan.localVariance) / plan.scale ** 2
    let stat = 0
    for (let i = 0; i < before.length; i++) {
      let sum = 0
      for (const device of cohort) sum += clipL2(device.deltas.get(record.id) as Float32Array, CLIP_NORM).values[i] as number
      const noise = ((after[i] as number) - (before[i] as number)) * 4 - sum
      stat += (noise * noise) / variance
    }
    // χ²_18: P(< 4) and P(> 50) are both below 1e-4.
    expect(stat).toBeGreaterThan(4)
    expect(stat).toBeLessThan(50)
  })

  test('a group sum with fewer devices than the accountant assumed is not published: typed reason, no ledger entry', async () => {
    const privacy = { mode: 'distributed' as const, clipNorm: CLIP_NORM, noiseMultiplier: 1, budget, minSurvivors: 4 }
    const running = await server.start({ store: new MemoryStore(), rounds: secureRounds({ maxCohort: 4, privacy }) })
    const drops: DropAfter[] = [undefined, undefined, undefined, 'secagg/advertise-keys']
    await Promise.all(drops.map((drop, i) => startDevice(running.url, 110 + i, dropAfter(drop))))
    const record = await roundRecord(running, (r) => r.outcome !== null)
    expect(record.outcome).toBe('aborted')
    expect(record.reason).toContain('HEARTH_ERR_PRIVACY_NOISE_SHORTFALL')
    expect(record.secagg?.groups[0]).toMatchObject({ clients: 4, survivors: 3, contributed: true })
    const { body: ledger } = await getJson<{ entries: unknown[] }>(running.url, `/admin/models/${TINY.name}/ledger`)
    expect(ledger.entries).toHaveLength(0)
    expect((await fetchWeights(running.url, TINY.name, 'latest')).version).toBe(1)
  })

  test('a central round, then a distributed one on the same model: the ledger shows both, and a third round past the budget is refused', async () => {
    const store = new MemoryStore()
    const central = { mode: 'central' as const, clipNorm: CLIP_NORM, noiseMultiplier: 1, budget }
    const centralApp = await server.start({ store, rounds: secureRounds({ maxCohort: 4, privacy: central }) })
    const centralCohort = await Promise.all([120, 121, 122, 123].map((seed) => startDevice(centralApp.url, seed)))
    const first = await roundRecord(centralApp, (r) => r.outcome !== null)
    expect(first.outcome, first.reason ?? '').toBe('published')
    await Promise.allSettled(centralCohort.map((d) => d.hearth.close()))
    await centralApp.close()

    // The budget of the restarted aggregator admits a second round, not a third.
    const plan = planDistributedDp({ mechanism: 'discrete-gaussian', bits: 32, maxClients: 4, noisyClients: 2, clipNorm: Math.hypot(CLIP_NORM, 0.5), dim: TINY_LENGTH + 1, noiseMultiplier: 1 })
    const event = distributedDpEvent(plan, 1)
    const epsilonAfter = (rounds: number): number => {
      const accountant = new RdpAccountant()
      accountant.compose(first.privacy!.event)
      accountant.compose(event, rounds)
      return accountant.epsilonAndOrder(budget.delta).epsilon
    }
    const tight = { epsilon: (epsilonAfter(1) + epsilonAfter(2)) / 2, delta: budget.delta }
    const distributed = { mode: 'distributed' as const, clipNorm: CLIP_NORM, noiseMultiplier: 1, budget: tight }
    const running = await server.start({ store, rounds: secureRounds({ maxCohort: 4, pauseMs: 100, privacy: distributed }) })
    await Promise.all([124, 125, 126, 127].map((seed) => startDevice(running.url, seed)))
    const second = await roundRecord(running, (r) => r.id !== first.id && r.outcome !== null)
    expect(second.outcome, second.reason ?? '').toBe('published')

    type Export = { entries: { mode: string; event: PrivacyEvent; epsilon: number }[]; refusal: { code: string } | null; epsilon: number }
    let ledger: Export | undefined
    await eventually(
      async () => {
        ledger = (await getJson<Export>(running.url, `/admin/models/${TINY.name}/ledger`)).body
        return ledger.refusal !== null
      },
      10_000,
      'the third round to be refused',
    )
    expect(ledger!.entries.map((e) => e.mode)).toEqual(['central', 'distributed'])
    expect(ledger!.entries[1]?.event).toEqual(event)
    expect(ledger!.entries[1]?.epsilon).toBeCloseTo(epsilonAfter(1), 9)
    expect(ledger!.refusal?.code).toBe('HEARTH_ERR_PRIVACY_BUDGET_EXCEEDED')
    expect((await fetchWeights(running.url, TINY.name, 'latest')).version).toBe(3)
  })
})
