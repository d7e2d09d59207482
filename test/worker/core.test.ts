/**
 * The worker core through its public API (worker/api.ts), called directly as Node simulations
 * do. IndexedDB is `fake-indexeddb` where persistence matters.
 */
import 'fake-indexeddb/auto'
import * as tf from '../../worker/tf.ts'
import { afterEach, describe, expect, test } from 'vitest'
import type { InteractionEvent } from '../../protocol/events.ts'
import type { TrainingPlan } from '../../protocol/messages.ts'
import { federatedLayout, federatedLength, initFederatedWeights, mfSpec } from '../../protocol/model-spec.ts'
import type { HearthWorkerApi } from '../../worker/api.ts'
import { createWorkerCore } from '../../worker/core.ts'
import type { WorkerCoreOptions } from '../../worker/core.ts'
import { itemBucket } from '../../worker/model/hash.ts'
import { MemoryDeviceStore } from '../../worker/store/memory-store.ts'
import { distinctItems, FullDisk, referenceScores, seededUniform, SMALL_SPEC } from './helpers.ts'

const PLAN: TrainingPlan = { epochs: 2, batchSize: 8, learningRate: 0.5, maxExamples: 1000 }
const N = federatedLength(SMALL_SPEC)
const [liked = [], disliked = [], unseen = []] = distinctItems(['liked', 'disliked', 'unseen'], 6, 256)

let dbCounter = 0
const cores: HearthWorkerApi[] = []
afterEach(async () => {
  for (const core of cores.splice(0)) await core.close()
})

/** A started core over a memory store the test can look into. */
async function startCore(options: WorkerCoreOptions = {}): Promise<{ core: HearthWorkerApi; store: MemoryDeviceStore }> {
  const store = new MemoryDeviceStore()
  const core = createWorkerCore({ seed: 1, openStore: async () => store, ...options })
  cores.push(core)
  await core.init({ dbName: 'unused', spec: SMALL_SPEC, backends: ['cpu'] })
  return { core, store }
}

function userEvents(): InteractionEvent[] {
  return [
    ...liked.map((item, i) => ({ item, kind: 'like' as const, at: 100 + i })),
    ...disliked.map((item, i) => ({ item, kind: 'dislike' as const, at: 200 + i })),
  ]
}

const weights = (seed: number): Float32Array => initFederatedWeights(SMALL_SPEC, seededUniform(seed))

describe('before init and after close', () => {
  test('every method fails with HEARTH_ERR_NOT_INITIALIZED', async () => {
    const core = createWorkerCore()
    const notInitialized = { code: 'HEARTH_ERR_NOT_INITIALIZED' }
    await expect(core.record([])).rejects.toMatchObject(notInitialized)
    await expect(core.stats()).rejects.toMatchObject(notInitialized)
    await expect(core.installGlobal(1, new Float32Array(N))).rejects.toMatchObject(notInitialized)
    await expect(core.trainLocal(PLAN)).rejects.toMatchObject(notInitialized)
    await expect(core.trainRound({ roundId: 1, baseVersion: 1, globalWeights: new Float32Array(N), plan: PLAN })).rejects.toMatchObject(notInitialized)
    await expect(core.noteRound({ roundId: 1, model: 'm', at: 1, elements: 1 })).rejects.toMatchObject(notInitialized)
    await expect(core.score(['a'])).rejects.toMatchObject(notInitialized)
    await core.close() // closing a core that never opened is fine
  })

  test('a closed core refuses work, and can be opened again', async () => {
    const core = createWorkerCore({ openStore: async () => new MemoryDeviceStore() })
    cores.push(core)
    await core.init({ dbName: 'x', spec: SMALL_SPEC, backends: ['cpu'] })
    await core.close()
    await expect(core.score(['a'])).rejects.toMatchObject({ code: 'HEARTH_ERR_NOT_INITIALIZED' })
    await expect(core.init({ dbName: 'x', spec: SMALL_SPEC, backends: ['cpu'] })).resolves.toMatchObject({ backend: 'cpu' })
  })
})

describe('argument checks', () => {
  test('init checks its options and the spec', async () => {
    const core = createWorkerCore({ openStore: async () => new MemoryDeviceStore() })
    cores.push(core)
    await expect(core.init({ dbName: '', spec: SMALL_SPEC })).rejects.toMatchObject({ code: 'HEARTH_ERR_INVALID_ARGUMENT', message: expect.stringMatching(/dbName/) })
    await expect(core.init({ dbName: 'x', spec: SMALL_SPEC, backends: ['gpu' as 'cpu'] })).rejects.toMatchObject({ message: expect.stringMatching(/backends/) })
    const wrong = { ...SMALL_SPEC, architecture: 'nope' } as unknown as typeof SMALL_SPEC
    await expect(core.init({ dbName: 'x', spec: wrong, backends: ['cpu'] })).rejects.toMatchObject({ code: 'HEARTH_ERR_MODEL_MISMATCH' })
    await core.init({ dbName: 'x', spec: SMALL_SPEC, backends: ['cpu'] })
    await expect(core.init({ dbName: 'x', spec: SMALL_SPEC, backends: ['cpu'] })).rejects.toMatchObject({ code: 'HEARTH_ERR_INVALID_ARGUMENT' })
  })

  test('vectors of the wrong length are a model mismatch; other bad values name the argument', async () => {
    const { core } = await startCore()
    await expect(core.installGlobal(1, new Float32Array(N - 1))).rejects.toMatchObject({ code: 'HEARTH_ERR_MODEL_MISMATCH' })
    await expect(core.trainRound({ roundId: 1, baseVersion: 1, globalWeights: new Float32Array(N + 1), plan: PLAN })).rejects.toMatchObject({ code: 'HEARTH_ERR_MODEL_MISMATCH' })
    const nan = new Float32Array(N)
    nan[5] = Number.NaN
    await expect(core.installGlobal(1, nan)).rejects.toMatchObject({ code: 'HEARTH_ERR_INVALID_ARGUMENT', message: expect.stringMatching(/weights\[5\]/) })
    await expect(core.installGlobal(-1, new Float32Array(N))).rejects.toMatchObject({ message: expect.stringMatching(/version/) })
    await expect(core.installGlobal(1, Array.from({ length: N }, () => 0) as unknown as Float32Array)).rejects.toMatchObject({ message: expect.stringMatching(/Float32Array/) })
    await expect(core.trainLocal({ ...PLAN, batchSize: 0 })).rejects.toMatchObject({ message: expect.stringMatching(/plan\.batchSize/) })
    await expect(core.trainRound({ roundId: 1, baseVersion: 1, globalWeights: new Float32Array(N), plan: { ...PLAN, learningRate: -1 } })).rejects.toMatchObject({ message: expect.stringMatching(/request\.plan\.learningRate/) })
    await expect(core.record([{ item: 'a', kind: 'like', at: 1 }, { item: 'b', kind: 'love' as 'like', at: 2 }])).rejects.toMatchObject({ code: 'HEARTH_ERR_INVALID_ARGUMENT', message: expect.stringMatching(/events\[1\].*kind/) })
    await expect(core.score(['ok', ''])).rejects.toMatchObject({ message: expect.stringMatching(/items\[1\]/) })
  })
})

describe('the device’s data', () => {
  test('stats counts events, versions, training and rounds', async () => {
    let now = 1_000
    const { core } = await startCore({ now: () => now })
    expect(await core.stats()).toEqual({
      events: 0,
      eventsByKind: { view: 0, click: 0, like: 0, purchase: 0, dismiss: 0, dislike: 0 },
      oldestEventAt: null,
      newestEventAt: null,
      eventsDropped: 0,
      eventsExpired: 0,
      decisions: 0,
      modelVersion: null,
      lastTrainedAt: null,
      roundsJoined: 0,
    })
    await core.record(userEvents())
    await core.installGlobal(4, weights(1))
    now = 5_000
    await core.trainLocal(PLAN)
    await core.noteRound({ roundId: 9, model: 'test', at: 1, elements: N })
    await core.noteRound({ roundId: 9, model: 'test', at: 2, elements: N })
    expect(await core.stats()).toMatchObject({
      events: 12,
      eventsByKind: { like: 6, dislike: 6 },
      oldestEventAt: 100,
      newestEventAt: 205,
      modelVersion: 4,
      lastTrainedAt: 5_000,
      roundsJoined: 1,
    })
  })

  test('a full device drops its oldest events and says so in stats', async () => {
    const core = createWorkerCore({ openStore: async () => new FullDisk(new MemoryDeviceStore(), 12) })
    cores.push(core)
    await core.init({ dbName: 'full', spec: SMALL_SPEC, backends: ['cpu'] })
    await core.record(userEvents())
    await core.record([{ item: 'late', kind: 'like', at: 300 }])
    // 10% of 12 stored, rounded up: the two oldest go.
    expect(await core.stats()).toMatchObject({ events: 11, eventsDropped: 2, oldestEventAt: 102, newestEventAt: 300 })
    await expect(core.record(Array.from({ length: 13 }, (_, at) => ({ item: 'x', kind: 'view' as const, at: 400 + at })))).rejects.toMatchObject({
      code: 'HEARTH_ERR_STORAGE_QUOTA',
    })
  })

  test('an event without a time is stamped with the core’s clock', async () => {
    const { core, store } = await startCore({ now: () => 777 })
    await core.record([{ item: 'a', kind: 'view' } as unknown as InteractionEvent])
    expect(await store.recentEvents(1)).toEqual([{ item: 'a', kind: 'view', at: 777 }])
  })
})

describe('trainRound', () => {
  test('returns the delta against the round’s weights, serves and stores what it served before', async () => {
    const { core, store } = await startCore({ negativesPerPositive: 0 })
    await core.record(userEvents())
    const installed = weights(1)
    await core.installGlobal(1, installed)
    const userBefore = (await store.loadLocal())?.user
    const roundGlobal = weights(2)

    const result = await core.trainRound({ roundId: 7, baseVersion: 2, globalWeights: roundGlobal, plan: PLAN })
    expect(result).toMatchObject({ roundId: 7, examples: 12 })
    expect(result.delta.length).toBe(N)
    expect(result.loss).toBeGreaterThan(0)

    // Only the device's own buckets moved: measured against the round's weights, since against
    // the installed ones every row would differ.
    const layout = Object.fromEntries(federatedLayout(SMALL_SPEC).map((s) => [s.tensor.name, s.offset]))
    const own = new Set([...liked, ...disliked].map((item) => itemBucket(item, 256)))
    for (let bucket = 0; bucket < 256; bucket++) {
      const row = result.delta.subarray((layout['item_embedding'] as number) + bucket * 8, (layout['item_embedding'] as number) + bucket * 8 + 8)
      const bias = result.delta[(layout['item_bias'] as number) + bucket]
      if (own.has(bucket)) expect(row.some((x) => x !== 0)).toBe(true)
      else expect(row.every((x) => x === 0) && bias === 0).toBe(true)
    }

    // The trained weights are not a new global: the store keeps version 1, the model serves it,
    // with the user vector re-fit during the round.
    const stored = await store.loadGlobal()
    expect(stored?.version).toBe(1)
    expect(stored?.weights).toEqual(installed)
    const user = (await store.loadLocal())?.user
    if (user === undefined || userBefore === undefined) throw new Error('no local model stored')
    expect(user).not.toEqual(userBefore)
    const items = [...liked, ...unseen]
    const expected = referenceScores(SMALL_SPEC, installed, user, items)
    ;(await core.score(items)).forEach((s, i) => expect(s).toBeCloseTo(expected[i] as number, 5))
    expect((await core.stats()).modelVersion).toBe(1)
  })

  test('a device without events returns a zero delta', async () => {
    const { core } = await startCore()
    const result = await core.trainRound({ roundId: 1, baseVersion: 0, globalWeights: weights(3), plan: PLAN })
    expect(result.examples).toBe(0)
    expect(result.delta.every((x) => x === 0)).toBe(true)
  })

  test('score() waits for a round in progress instead of scoring its weights', async () => {
    const { core, store } = await startCore()
    await core.record(userEvents())
    const installed = weights(4)
    await core.installGlobal(1, installed)
    const training = core.trainRound({ roundId: 1, baseVersion: 2, globalWeights: weights(5), plan: { ...PLAN, epochs: 5 } })
    const scoring = core.score(unseen)
    const [, scores] = await Promise.all([training, scoring])
    const user = (await store.loadLocal())?.user ?? new Float32Array(0)
    const expected = referenceScores(SMALL_SPEC, installed, user, unseen)
    scores.forEach((s, i) => expect(s).toBeCloseTo(expected[i] as number, 5))
  })

  test('memory stays flat over 20 rounds', async () => {
    const { core } = await startCore()
    await core.record(userEvents())
    const counts: number[] = []
    for (let round = 0; round < 20; round++) {
      const global = weights(round)
      await core.installGlobal(round, global)
      await core.trainRound({ roundId: round, baseVersion: round, globalWeights: global, plan: { ...PLAN, epochs: 1 } })
      if (round % 5 === 0) await core.trainLocal({ ...PLAN, epochs: 1 })
      await core.score(unseen)
      counts.push(tf.memory().numTensors)
    }
    expect(new Set(counts).size).toBe(1)
  })
})

describe('what survives a restart (IndexedDB)', () => {
  async function openCore(dbName: string, spec = SMALL_SPEC): Promise<HearthWorkerApi> {
    const core = createWorkerCore({ seed: 2 })
    cores.push(core)
    await core.init({ dbName, spec, backends: ['cpu'] })
    return core
  }

  test('the global version, the user vector and local fine-tuning', async () => {
    const dbName = `core-${++dbCounter}`
    const first = await openCore(dbName)
    await first.record(userEvents())
    await first.installGlobal(3, weights(6))
    await first.trainLocal(PLAN)
    const scores = await first.score([...liked, ...unseen])
    await first.close()

    const second = await openCore(dbName)
    expect((await second.stats()).modelVersion).toBe(3)
    expect(await second.score([...liked, ...unseen])).toEqual(scores)
  })

  test('a newer global replaces local fine-tuning', async () => {
    const dbName = `core-${++dbCounter}`
    const first = await openCore(dbName)
    await first.record(userEvents())
    await first.installGlobal(1, weights(7))
    await first.trainLocal(PLAN)
    const fresh = weights(8)
    await first.installGlobal(2, fresh)
    await first.close()

    const second = await openCore(dbName)
    expect((await second.stats()).modelVersion).toBe(2)
    // Served weights are the new global exactly: reference scores with the stored user vector.
    const scores = await second.score(unseen)
    const store = (await import('../../worker/store/idb-store.ts')).IdbDeviceStore
    const raw = await store.open(dbName)
    const user = (await raw.loadLocal())?.user ?? new Float32Array(0)
    await raw.close()
    const expected = referenceScores(SMALL_SPEC, fresh, user, unseen)
    scores.forEach((s, i) => expect(s).toBeCloseTo(expected[i] as number, 5))
  })

  test('weights saved for another spec are not loaded', async () => {
    const dbName = `core-${++dbCounter}`
    const first = await openCore(dbName)
    await first.installGlobal(5, weights(9))
    await first.close()
    const wider = mfSpec('test', { buckets: 256, dim: 4 })
    const second = await openCore(dbName, wider)
    expect((await second.stats()).modelVersion).toBeNull()
    await expect(second.installGlobal(6, initFederatedWeights(wider, seededUniform(1)))).resolves.toBeUndefined()
  })
})
