/**
 * One suite for both `DeviceStore` implementations (STYLE.md #5), then what only IndexedDB has:
 * persistence, schema versions, atomic batches when a quota error interrupts one.
 * IndexedDB is `fake-indexeddb` here; the real-Chromium run is in test/browser.
 */
import 'fake-indexeddb/auto'
import { afterEach, describe, expect, test, vi } from 'vitest'
import { openDB } from 'idb'
import type { EventKind, InteractionEvent } from '../../protocol/events.ts'
import type { DecisionRecord } from '../../protocol/ranking.ts'
import type { DeviceStore } from '../../worker/store/device-store.ts'
import { DB_VERSION, upgradeDb } from '../../worker/store/idb-schema.ts'
import type { HearthDbSchema } from '../../worker/store/idb-schema.ts'
import { IdbDeviceStore } from '../../worker/store/idb-store.ts'
import { MemoryDeviceStore } from '../../worker/store/memory-store.ts'
import { QuotaRecoveringStore } from '../../worker/store/quota.ts'
import { FullDisk } from './helpers.ts'

let dbCounter = 0
const freshDbName = (): string => `hearth-test-${++dbCounter}`

const implementations: [string, () => Promise<DeviceStore>][] = [
  ['MemoryDeviceStore', async () => new MemoryDeviceStore()],
  ['IdbDeviceStore', () => IdbDeviceStore.open(freshDbName())],
]

function event(item: string, kind: EventKind, at: number): InteractionEvent {
  return { item, kind, at }
}

/** A decision logged at `at`, ranking items `a` and `b`. */
function decision(id: string, at: number): DecisionRecord {
  return {
    id,
    at,
    modelVersion: 1,
    exploration: { method: 'epsilon-greedy', epsilon: 0.1 },
    candidates: [{ item: 'a' }, { item: 'b', features: { genre: 'jazz' } }],
    order: [1, 0],
    scores: [0.5, 0.25],
    propensities: [0.95, 1],
    reasons: [{ kind: 'popular', text: 'Popular among all users' }],
    outcomes: [],
  }
}

/** Events at times `ats`, items named after their time. */
function eventsAt(...ats: number[]): InteractionEvent[] {
  return ats.map((at) => event(`item-${at}`, 'view', at))
}

const ats = (events: readonly InteractionEvent[]): number[] => events.map((e) => e.at)

describe.each(implementations)('%s', (_, open) => {
  const opened: DeviceStore[] = []
  const openStore = async (): Promise<DeviceStore> => {
    const store = await open()
    opened.push(store)
    return store
  }
  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close()
  })

  test('starts empty', async () => {
    const store = await openStore()
    expect(await store.summarizeEvents()).toEqual({
      count: 0,
      byKind: { view: 0, click: 0, like: 0, purchase: 0, dismiss: 0, dislike: 0 },
      oldestAt: null,
      newestAt: null,
    })
    expect(await store.recentEvents(10)).toEqual([])
    expect(await store.loadGlobal()).toBeNull()
    expect(await store.loadLocal()).toBeNull()
    expect(await store.getMeta('lastTrainedAt')).toBeNull()
    expect(await store.countRounds()).toBe(0)
  })

  test('counts events by kind and knows the oldest and newest', async () => {
    const store = await openStore()
    await store.appendEvents([event('a', 'view', 30), event('b', 'like', 10), event('a', 'like', 20)])
    await store.appendEvents([event('c', 'dislike', 40)])
    const summary = await store.summarizeEvents()
    expect(summary.count).toBe(4)
    expect(summary.byKind).toEqual({ view: 1, click: 0, like: 2, purchase: 0, dismiss: 0, dislike: 1 })
    expect(summary.oldestAt).toBe(10)
    expect(summary.newestAt).toBe(40)
  })

  test('reads the most recent events first, up to a limit, with their context', async () => {
    const store = await openStore()
    await store.appendEvents([...eventsAt(5, 1, 3), { item: 'x', kind: 'click', at: 4, context: { surface: 'home', hour: 9, mobile: true } }])
    expect(ats(await store.recentEvents(10))).toEqual([5, 4, 3, 1])
    expect(ats(await store.recentEvents(2))).toEqual([5, 4])
    expect(await store.recentEvents(0)).toEqual([])
    const [, withContext] = await store.recentEvents(2)
    expect(withContext).toEqual({ item: 'x', kind: 'click', at: 4, context: { surface: 'home', hour: 9, mobile: true } })
  })

  test('a batch that cannot be stored leaves nothing behind', async () => {
    const store = await openStore()
    await store.appendEvents(eventsAt(1))
    const poisoned = [...eventsAt(2, 3), { item: 'x', kind: 'view', at: 4, context: { bad: () => 0 } } as unknown as InteractionEvent]
    await expect(store.appendEvents(poisoned)).rejects.toMatchObject({ code: 'HEARTH_ERR_STORAGE' })
    expect(ats(await store.recentEvents(10))).toEqual([1])
  })

  test('drops the oldest events by event time, not by insertion order, and counts them', async () => {
    const store = await openStore()
    await store.appendEvents(eventsAt(50, 10, 40))
    await store.appendEvents(eventsAt(20, 30))
    expect(await store.dropOldestEvents(2)).toBe(2)
    expect(ats(await store.recentEvents(10))).toEqual([50, 40, 30])
    expect(await store.getMeta('eventsDropped')).toBe(2)
    expect(await store.dropOldestEvents(10)).toBe(3)
    expect(await store.getMeta('eventsDropped')).toBe(5)
    expect(await store.dropOldestEvents(1)).toBe(0)
  })

  test('keeps the global and local models, as copies', async () => {
    const store = await openStore()
    const weights = Float32Array.from([1, -2, 3.5])
    await store.saveGlobal({ fingerprint: 'f', version: 7, weights })
    weights[0] = 99
    const global = await store.loadGlobal()
    expect(global).toEqual({ fingerprint: 'f', version: 7, weights: Float32Array.from([1, -2, 3.5]) })
    expect(global?.weights).toBeInstanceOf(Float32Array)

    await store.saveLocal({ fingerprint: 'f', user: Float32Array.from([0.5]), tuned: null })
    expect(await store.loadLocal()).toEqual({ fingerprint: 'f', user: Float32Array.from([0.5]), tuned: null })
    const tuned = { baseVersion: 7, weights: Float32Array.from([4, 5, 6]) }
    await store.saveLocal({ fingerprint: 'f', user: Float32Array.from([0.25]), tuned })
    expect(await store.loadLocal()).toEqual({ fingerprint: 'f', user: Float32Array.from([0.25]), tuned })
    expect((await store.loadGlobal())?.version).toBe(7)
  })

  test('remembers meta values and each round once', async () => {
    const store = await openStore()
    await store.setMeta('lastTrainedAt', 1234)
    expect(await store.getMeta('lastTrainedAt')).toBe(1234)
    await store.addRound({ roundId: 1, model: 'm', at: 1, elements: 10 })
    await store.addRound({ roundId: 1, model: 'm', at: 2, elements: 10 })
    await store.addRound({ roundId: 1, model: 'other', at: 3, elements: 10 })
    await store.addRound({ roundId: 2, model: 'm', at: 4, elements: 10 })
    expect(await store.countRounds()).toBe(3)
  })

  test('lists rounds oldest first', async () => {
    const store = await openStore()
    await store.addRound({ roundId: 2, model: 'm', at: 20, elements: 10 })
    await store.addRound({ roundId: 1, model: 'm', at: 10, elements: 10 })
    expect((await store.listRounds()).map((r) => r.roundId)).toEqual([1, 2])
  })

  test('expires events older than the retention window and counts them apart from dropped ones', async () => {
    const store = await openStore()
    await store.appendEvents(eventsAt(50, 10, 40, 20))
    expect(await store.countEvents()).toBe(4)
    expect(await store.expireEvents(40)).toBe(2)
    expect(ats(await store.recentEvents(10))).toEqual([50, 40])
    expect(await store.getMeta('eventsExpired')).toBe(2)
    expect(await store.getMeta('eventsDropped')).toBeNull()
    expect(await store.expireEvents(40)).toBe(0)
  })

  test('erases named features from stored events, keeping the rest', async () => {
    const store = await openStore()
    await store.appendEvents([
      { item: 'a', kind: 'view', at: 1, features: { topic: 'health', genre: 'news' } },
      { item: 'b', kind: 'view', at: 2, features: { topic: 'health' } },
      { item: 'c', kind: 'view', at: 3, features: { genre: 'sport' } },
      { item: 'd', kind: 'view', at: 4 },
    ])
    expect(await store.redactEventFeatures(['topic'])).toBe(2)
    expect(await store.recentEvents(10)).toEqual([
      { item: 'd', kind: 'view', at: 4 },
      { item: 'c', kind: 'view', at: 3, features: { genre: 'sport' } },
      { item: 'b', kind: 'view', at: 2 },
      { item: 'a', kind: 'view', at: 1, features: { genre: 'news' } },
    ])
  })

  test('logs decisions, replaces one by id, reads the newest first and prunes by age and count', async () => {
    const store = await openStore()
    for (const [id, at] of [['d1', 10], ['d3', 30], ['d2', 20], ['d4', 40]] as const) await store.putDecision(decision(id, at))
    const updated = { ...decision('d2', 20), outcomes: [{ item: 'b', kind: 'click' as const, at: 25, position: 0 }] }
    await store.putDecision(updated)
    expect(await store.countDecisions()).toBe(4)
    const recent = await store.recentDecisions(3)
    expect(recent.map((d) => d.id)).toEqual(['d4', 'd3', 'd2'])
    expect(recent[2]).toEqual(updated)
    // Older than 15 goes (d1), then the oldest beyond the newest 2 (d2).
    expect(await store.pruneDecisions(15, 2)).toBe(2)
    expect((await store.recentDecisions(10)).map((d) => d.id)).toEqual(['d4', 'd3'])
  })

  test('keeps the personalization settings', async () => {
    const store = await openStore()
    expect(await store.loadSettings()).toBeNull()
    await store.saveSettings({ paused: true, consent: { health: false }, updatedAt: 5 })
    expect(await store.loadSettings()).toEqual({ paused: true, consent: { health: false }, updatedAt: 5 })
  })

  test('clear() deletes everything', async () => {
    const store = await openStore()
    await store.appendEvents(eventsAt(1, 2))
    await store.saveGlobal({ fingerprint: 'f', version: 1, weights: new Float32Array(2) })
    await store.saveLocal({ fingerprint: 'f', user: new Float32Array(1), tuned: null })
    await store.setMeta('lastTrainedAt', 1)
    await store.addRound({ roundId: 1, model: 'm', at: 1, elements: 1 })
    await store.putDecision(decision('d', 1))
    await store.saveSettings({ paused: true, consent: {}, updatedAt: 1 })
    await store.clear()
    expect((await store.summarizeEvents()).count).toBe(0)
    expect(await store.loadGlobal()).toBeNull()
    expect(await store.loadLocal()).toBeNull()
    expect(await store.getMeta('lastTrainedAt')).toBeNull()
    expect(await store.countRounds()).toBe(0)
    expect(await store.countDecisions()).toBe(0)
    expect(await store.loadSettings()).toBeNull()
  })

  test('a closed store refuses work with HEARTH_ERR_STORAGE', async () => {
    const store = await open()
    await store.close()
    await expect(store.summarizeEvents()).rejects.toMatchObject({ code: 'HEARTH_ERR_STORAGE' })
    await expect(store.appendEvents(eventsAt(1))).rejects.toMatchObject({ code: 'HEARTH_ERR_STORAGE' })
  })

  describe('when the device is full', () => {
    test('drops the oldest events and retries once', async () => {
      const disk = new FullDisk(await openStore(), 10)
      const store = new QuotaRecoveringStore(disk)
      await store.appendEvents(eventsAt(10, 9, 8, 7, 6, 5, 4, 3, 2, 1))
      await store.appendEvents(eventsAt(11, 12))
      // Two dropped: as many as the batch (more than 10% of 10 stored).
      expect(ats(await store.recentEvents(100))).toEqual([12, 11, 10, 9, 8, 7, 6, 5, 4, 3])
      expect(await store.getMeta('eventsDropped')).toBe(2)
    })

    test('drops a fraction of the stored events when that is more than the batch', async () => {
      const disk = new FullDisk(await openStore(), 10)
      const store = new QuotaRecoveringStore(disk, { dropFraction: 0.3 })
      await store.appendEvents(eventsAt(1, 2, 3, 4, 5, 6, 7, 8, 9, 10))
      await store.appendEvents(eventsAt(11))
      expect(ats(await store.recentEvents(100))).toEqual([11, 10, 9, 8, 7, 6, 5, 4])
      expect(await store.getMeta('eventsDropped')).toBe(3)
    })

    test('gives up with HEARTH_ERR_STORAGE_QUOTA when one retry is not enough', async () => {
      const disk = new FullDisk(await openStore(), 3)
      const store = new QuotaRecoveringStore(disk)
      await store.appendEvents(eventsAt(1, 2))
      const error = await store.appendEvents(eventsAt(3, 4, 5, 6, 7)).catch((e: unknown) => e)
      expect(error).toMatchObject({ code: 'HEARTH_ERR_STORAGE_QUOTA' })
      expect((error as Error).message).toMatch(/after dropping the 2 oldest events/)
      expect(await store.recentEvents(10)).toEqual([])
    })

    test('frees space for model writes too', async () => {
      const disk = new FullDisk(await openStore(), 100)
      const store = new QuotaRecoveringStore(disk, { dropFraction: 0.5 })
      await store.appendEvents(eventsAt(1, 2, 3, 4))
      disk.failNextModelWrite = true
      await store.saveGlobal({ fingerprint: 'f', version: 3, weights: new Float32Array(4) })
      expect((await store.loadGlobal())?.version).toBe(3)
      expect(ats(await store.recentEvents(10))).toEqual([4, 3])
    })

    test('other failures pass through and drop nothing', async () => {
      const inner = await openStore()
      const store = new QuotaRecoveringStore(inner)
      await store.appendEvents(eventsAt(1, 2))
      const poisoned = [{ item: 'x', kind: 'view', at: 4, context: { bad: () => 0 } } as unknown as InteractionEvent]
      await expect(store.appendEvents(poisoned)).rejects.toMatchObject({ code: 'HEARTH_ERR_STORAGE' })
      expect(ats(await store.recentEvents(10))).toEqual([2, 1])
    })
  })
})

describe('IdbDeviceStore only', () => {
  afterEach(() => {
    vi.restoreAllMocks()
  })

  test('keeps its data across connections', async () => {
    const name = freshDbName()
    const first = await IdbDeviceStore.open(name)
    await first.appendEvents(eventsAt(1, 2))
    await first.saveGlobal({ fingerprint: 'f', version: 2, weights: Float32Array.from([1, 2]) })
    await first.close()
    const second = await IdbDeviceStore.open(name)
    expect((await second.summarizeEvents()).count).toBe(2)
    expect((await second.loadGlobal())?.weights).toEqual(Float32Array.from([1, 2]))
    await second.close()
  })

  test('creates the version-2 schema from nothing', async () => {
    const name = freshDbName()
    const store = await IdbDeviceStore.open(name)
    await store.close()
    const raw = await rawOpen(name)
    expect(raw.version).toBe(DB_VERSION)
    expect(DB_VERSION).toBe(2)
    expect([...raw.objectStoreNames].sort()).toEqual(['decisions', 'events', 'meta', 'models', 'rounds', 'settings'])
    const tx = raw.transaction(['events', 'decisions'])
    const events = tx.objectStore('events')
    expect(events.autoIncrement).toBe(true)
    expect([...events.indexNames].sort()).toEqual(['by-at', 'by-kind'])
    const decisions = tx.objectStore('decisions')
    expect(decisions.keyPath).toBe('id')
    expect([...decisions.indexNames]).toEqual(['by-at'])
    raw.close()
  })

  test('upgrades a version-1 database, keeping its events, models, meta and rounds', async () => {
    const name = freshDbName()
    // A device that last ran the version-1 build: only the first migration.
    const v1 = await openDB<HearthDbSchema>(name, 1, { upgrade: (db, oldVersion, _newVersion, tx) => upgradeDb(db, oldVersion, 1, tx) })
    expect([...v1.objectStoreNames].sort()).toEqual(['events', 'meta', 'models', 'rounds'])
    await v1.add('events', { item: 'old', kind: 'like', at: 7 })
    await v1.put('models', { slot: 'global', fingerprint: 'f', version: 3, weights: Float32Array.from([1, 2]) })
    await v1.put('models', { slot: 'local', fingerprint: 'f', user: Float32Array.from([0.5]), tuned: null })
    await v1.put('meta', 9, 'lastTrainedAt')
    await v1.put('rounds', { roundId: 4, model: 'm', at: 8, elements: 2 })
    v1.close()

    const store = await IdbDeviceStore.open(name)
    expect(await store.recentEvents(10)).toEqual([{ item: 'old', kind: 'like', at: 7 }])
    expect(await store.loadGlobal()).toEqual({ fingerprint: 'f', version: 3, weights: Float32Array.from([1, 2]) })
    expect(await store.loadLocal()).toEqual({ fingerprint: 'f', user: Float32Array.from([0.5]), tuned: null })
    expect(await store.getMeta('lastTrainedAt')).toBe(9)
    expect(await store.countRounds()).toBe(1)
    // The new stores work.
    expect(await store.countDecisions()).toBe(0)
    await store.putDecision(decision('after-upgrade', 10))
    await store.saveSettings({ paused: false, consent: { health: true }, updatedAt: 10 })
    expect((await store.recentDecisions(1))[0]?.id).toBe('after-upgrade')
    expect((await store.loadSettings())?.consent).toEqual({ health: true })
    await store.close()
    const raw = await rawOpen(name)
    expect(raw.version).toBe(2)
    raw.close()
  })

  test('refuses a database written by a newer schema version', async () => {
    const name = freshDbName()
    const raw = await rawOpen(name, DB_VERSION + 1)
    raw.close()
    await expect(IdbDeviceStore.open(name)).rejects.toMatchObject({ code: 'HEARTH_ERR_STORAGE', message: expect.stringMatching(/VersionError/) })
  })

  test('steps aside when a newer version of the app needs to upgrade', async () => {
    const name = freshDbName()
    const store = await IdbDeviceStore.open(name)
    const newer = await rawOpen(name, DB_VERSION + 1)
    newer.close()
    await expect(store.summarizeEvents()).rejects.toMatchObject({ code: 'HEARTH_ERR_STORAGE', message: expect.stringMatching(/newer version/) })
  })

  test('a quota error in the middle of a batch writes none of it', async () => {
    const store = await IdbDeviceStore.open(freshDbName())
    await store.appendEvents(eventsAt(1))
    const add = IDBObjectStore.prototype.add
    let calls = 0
    vi.spyOn(IDBObjectStore.prototype, 'add').mockImplementation(function (this: IDBObjectStore, ...args) {
      if (++calls === 3) throw new DOMException('The quota has been exceeded.', 'QuotaExceededError')
      return add.apply(this, args)
    })
    await expect(store.appendEvents(eventsAt(2, 3, 4, 5))).rejects.toMatchObject({ code: 'HEARTH_ERR_STORAGE_QUOTA' })
    vi.restoreAllMocks()
    expect(ats(await store.recentEvents(10))).toEqual([1])
    await store.close()
  })

  test('recovers from a real quota error through QuotaRecoveringStore', async () => {
    const store = new QuotaRecoveringStore(await IdbDeviceStore.open(freshDbName()))
    await store.appendEvents(eventsAt(1, 2, 3))
    const add = IDBObjectStore.prototype.add
    let failures = 1
    vi.spyOn(IDBObjectStore.prototype, 'add').mockImplementation(function (this: IDBObjectStore, ...args) {
      if (failures-- > 0) throw new DOMException('The quota has been exceeded.', 'QuotaExceededError')
      return add.apply(this, args)
    })
    await store.appendEvents(eventsAt(4))
    expect(ats(await store.recentEvents(10))).toEqual([4, 3, 2])
    expect(await store.getMeta('eventsDropped')).toBe(1)
    await store.close()
  })
})

function rawOpen(name: string, version?: number): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(name, version)
    request.onsuccess = () => resolve(request.result)
    request.onerror = () => reject(request.error)
  })
}
