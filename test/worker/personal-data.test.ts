/**
 * The user's data on the device through the worker API: the decision log and its outcomes,
 * pausing, retention and size limits, `exportData()` (the documented shape) and `deleteData()`
 * (nothing left in IndexedDB, here `fake-indexeddb`), and off-policy estimates from the log.
 */
import 'fake-indexeddb/auto'
import { openDB } from 'idb'
import { afterEach, describe, expect, test } from 'vitest'
import type { InteractionEvent } from '../../protocol/events.ts'
import { initFederatedWeights } from '../../protocol/model-spec.ts'
import { EXPORT_FORMAT, EXPORT_VERSION } from '../../protocol/personal-data.ts'
import type { HearthWorkerApi } from '../../worker/api.ts'
import { createWorkerCore } from '../../worker/core.ts'
import type { WorkerCoreOptions } from '../../worker/core.ts'
import type { PersonalizationOptions } from '../../worker/personalization/personalization.ts'
import type { HearthDbSchema } from '../../worker/store/idb-schema.ts'
import { MemoryDeviceStore } from '../../worker/store/memory-store.ts'
import { distinctItems, seededUniform, SMALL_SPEC } from './helpers.ts'

const cores: HearthWorkerApi[] = []
afterEach(async () => {
  for (const core of cores.splice(0)) await core.close()
})

let dbCounter = 0
const DAY = 86_400_000

async function startCore(options: WorkerCoreOptions = {}, personalization: PersonalizationOptions = {}, dbName = 'memory'): Promise<HearthWorkerApi> {
  const core = createWorkerCore({ seed: 3, openStore: async () => new MemoryDeviceStore(), ...options })
  cores.push(core)
  await core.init({ dbName, spec: SMALL_SPEC, backends: ['cpu'], personalization })
  return core
}

const [items = []] = distinctItems(['item'], 30, 256)
const likes = (ids: readonly string[], at: number): InteractionEvent[] => ids.map((item, i) => ({ item, kind: 'like', at: at + i }))

describe('the decision log', () => {
  test('attributes later events on ranked items to the decision, within the window', async () => {
    let now = 10_000
    const core = await startCore({ now: () => now }, { attributionWindowMs: 1_000 })
    await core.installGlobal(1, initFederatedWeights(SMALL_SPEC, seededUniform(1)))
    const { decision, items: ranked } = await core.rank(items.slice(0, 5), { page: 'home' }, { exploration: { method: 'none' } })
    const third = ranked[2]?.item as string
    now = 10_500
    await core.record([{ item: third, kind: 'click', at: now }, { item: 'not-ranked', kind: 'click', at: now }])
    now = 12_000 // past the window
    await core.record([{ item: ranked[0]?.item as string, kind: 'like', at: now }])
    const [logged] = await core.decisions()
    expect(logged?.id).toBe(decision)
    expect(logged?.outcomes).toEqual([{ item: third, kind: 'click', at: 10_500, position: 2 }])
    expect((await core.stats()).decisions).toBe(1)
  })

  test('keeps at most maxDecisions, the newest', async () => {
    let now = 1
    const core = await startCore({ now: () => now }, { maxDecisions: 3 })
    for (let i = 0; i < 12; i++) {
      now = 1000 + i
      await core.rank(['a', 'b'])
    }
    const decisions = await core.decisions()
    expect(decisions.length).toBeLessThanOrEqual(3 + 9) // pruned every tenth decision
    await core.close()
    cores.pop()
    // At the next start the limit holds exactly.
    const store = new MemoryDeviceStore()
    const again = createWorkerCore({ now: () => now, openStore: async () => store })
    cores.push(again)
    for (let i = 0; i < 5; i++) await store.putDecision({ ...(decisions[0] as (typeof decisions)[number]), id: `old-${i}`, at: i + 1 })
    await again.init({ dbName: 'x', spec: SMALL_SPEC, backends: ['cpu'], personalization: { maxDecisions: 3 } })
    expect((await again.decisions()).map((d) => d.id)).toEqual(['old-4', 'old-3', 'old-2'])
  })

  test('off-policy estimates come from the logged propensities and outcomes', async () => {
    let now = 1
    const core = await startCore({ now: () => now }, { exploration: { method: 'epsilon-greedy', epsilon: 0.5, slots: 1 } })
    const global = initFederatedWeights(SMALL_SPEC, seededUniform(2))
    await core.installGlobal(1, global)
    const candidates = items.slice(0, 4)
    let clicks = 0
    for (let i = 0; i < 40; i++) {
      now = 1_000_000 + i * 10
      const { items: ranked } = await core.rank(candidates)
      // The user clicks the first item whenever it is candidates[0].
      if (ranked[0]?.item === candidates[0]) {
        clicks++
        await core.record([{ item: candidates[0] as string, kind: 'click', at: now + 1 }])
      }
    }
    const report = await core.offPolicyEstimate()
    expect(report).toMatchObject({ decisions: 40, slots: 1, samples: 40 })
    expect(report.logged).toBeCloseTo(clicks / 40, 12)
    expect(report.ips).toBeGreaterThanOrEqual(0)
    expect(report.snips).toBeGreaterThanOrEqual(0)
    expect(report.snips).toBeLessThanOrEqual(1)
    expect(report.effectiveSampleSize).toBeGreaterThan(0)
    await expect(core.offPolicyEstimate({ exploration: { method: 'thompson' } })).rejects.toMatchObject({ code: 'HEARTH_ERR_INVALID_ARGUMENT' })
    await expect(core.offPolicyEstimate({ weights: new Float32Array(3) })).rejects.toMatchObject({ code: 'HEARTH_ERR_MODEL_MISMATCH' })
    const other = await core.offPolicyEstimate({ weights: initFederatedWeights(SMALL_SPEC, seededUniform(3)), exploration: { method: 'epsilon-greedy', epsilon: 0.1 } })
    expect(other.samples).toBe(40)
  })
})

describe('pausing personalization', () => {
  test('paused: record() stores nothing and rank() keeps the app’s order, logging nothing; resumed: back to normal', async () => {
    const core = await startCore()
    await core.installGlobal(1, initFederatedWeights(SMALL_SPEC, seededUniform(4)))
    await core.record(likes(items.slice(0, 2), 1))
    expect(await core.setPaused(true)).toMatchObject({ paused: true })
    await core.record(likes(items.slice(2, 4), 10))
    expect((await core.stats()).events).toBe(2)
    const paused = await core.rank(['z', 'y', 'x'])
    expect(paused).toEqual({
      decision: null,
      modelVersion: 1,
      exploration: 'none',
      items: ['z', 'y', 'x'].map((item) => ({ item, score: 0, propensity: 1, reason: { kind: 'app-order', why: 'paused', text: 'In the app’s order: personalization is paused' } })),
    })
    expect(await core.decisions()).toEqual([])
    expect((await core.settings()).paused).toBe(true)
    await core.setPaused(false)
    await core.record(likes(items.slice(4, 5), 20))
    expect((await core.stats()).events).toBe(3)
    expect((await core.rank(['z', 'y'])).decision).toEqual(expect.any(String))
  })

  test('the setting survives a restart (IndexedDB)', async () => {
    const dbName = `paused-${++dbCounter}`
    const first = await startCore({ openStore: undefined }, {}, dbName)
    await first.setPaused(true)
    await first.close()
    cores.pop()
    const second = await startCore({ openStore: undefined }, {}, dbName)
    expect((await second.settings()).paused).toBe(true)
  })
})

describe('retention and size', () => {
  test('events beyond maxEvents go oldest first; events older than the window are deleted', async () => {
    let now = 100 * DAY
    const core = await startCore({ now: () => now }, { maxEvents: 10, retentionDays: 30 })
    await core.record(likes(items.slice(0, 15), now - 1000))
    let stats = await core.stats()
    expect(stats.events).toBe(10)
    expect(stats.eventsDropped).toBe(5)
    expect(stats.oldestEventAt).toBe(now - 1000 + 5)
    now += 31 * DAY
    await core.record(likes(['fresh'], now))
    stats = await core.stats()
    expect(stats.events).toBe(1)
    expect(stats.eventsExpired).toBe(10)
  })

  test('retention applies at start too', async () => {
    const store = new MemoryDeviceStore()
    await store.appendEvents(likes(['ancient'], 1))
    await startCore({ openStore: async () => store, now: () => 400 * DAY }, { retentionDays: 365 })
    expect(await store.countEvents()).toBe(0)
  })
})

describe('export and delete', () => {
  test('exportData() returns everything stored, in the documented shape; deleteData() leaves nothing in IndexedDB', async () => {
    const dbName = `personal-${++dbCounter}`
    let now = 5_000
    const core = createWorkerCore({ seed: 9, now: () => now }) // IndexedDB (fake-indexeddb)
    cores.push(core)
    await core.init({ dbName, spec: SMALL_SPEC, backends: ['cpu'], personalization: { sensitiveFeatures: { topic: 'health' } } })
    await core.record([...likes(items.slice(0, 6), 1000), { item: 'y', kind: 'dislike', at: 2000, context: { hour: 9 }, features: { topic: 'health', genre: 'x' } }])
    await core.installGlobal(2, initFederatedWeights(SMALL_SPEC, seededUniform(5)))
    await core.setConsent('health', false)
    await core.trainLocal({ epochs: 1, batchSize: 4, learningRate: 0.05, maxExamples: 100 })
    await core.noteRound({ roundId: 3, model: 'test', at: 4000, elements: 10 })
    now = 6_000
    const { decision } = await core.rank(items.slice(6, 12), { page: 'home' })

    const exported = await core.exportData()
    expect(JSON.parse(JSON.stringify(exported))).toEqual(exported) // JSON-ready
    expect(exported).toMatchObject({
      format: EXPORT_FORMAT,
      version: EXPORT_VERSION,
      exportedAt: 6_000,
      settings: { paused: false, consent: { health: false } },
      model: { name: 'test', architecture: 'hearth-mf-v1', globalVersion: 2, fineTunedFrom: 2, lastTrainedAt: 5_000 },
      rounds: [{ roundId: 3, model: 'test', at: 4000, elements: 10 }],
      counts: { events: 7, eventsByKind: { like: 6, dislike: 1 }, decisions: 1 },
    })
    expect(exported.events).toHaveLength(7)
    expect(exported.events[0]).toEqual({ item: items[0], kind: 'like', at: 1000 })
    expect(exported.events[6]).toEqual({ item: 'y', kind: 'dislike', at: 2000, context: { hour: 9 }, features: { genre: 'x' } })
    expect(exported.decisions.map((d) => d.id)).toEqual([decision])
    expect(exported.model?.localParameters).toEqual([{ name: 'user_embedding', shape: [8], values: expect.any(Array) }])
    expect(exported.model?.localParameters[0]?.values).toHaveLength(8)

    await core.deleteData()
    // Every object store of the database is empty.
    const db = await openDB<HearthDbSchema>(dbName)
    for (const name of db.objectStoreNames) expect(await db.count(name)).toBe(0)
    db.close()
    const after = await core.exportData()
    expect(after.events).toEqual([])
    expect(after.decisions).toEqual([])
    expect(after.rounds).toEqual([])
    expect(after.settings).toEqual({ paused: false, consent: {}, updatedAt: null })
    expect(after.model?.fineTunedFrom).toBeNull()
    expect(after.model?.localParameters[0]?.values).not.toEqual(exported.model?.localParameters[0]?.values)
    // The device ranks again, without personal signal: the prior alone.
    const ranked = await core.rank(items.slice(0, 5), undefined, { exploration: { method: 'none' } })
    expect(ranked.items.every((i) => i.reason.kind === 'popular')).toBe(true)
    expect((await core.stats()).events).toBe(0)
  })
})
