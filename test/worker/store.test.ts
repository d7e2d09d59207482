/**
 * One suite for both `DeviceStore` implementations (STYLE.md #5), then what only IndexedDB has:
 * persistence, schema versions, atomic batches when a quota error interrupts one.
 * IndexedDB is `fake-indexeddb` here; the real-Chromium run is in test/browser.
 */
import 'fake-indexeddb/auto'
import { afterEach, describe, expect, test, vi } from 'vitest'
import type { EventKind, InteractionEvent } from '../../protocol/events.ts'
import type { DeviceStore } from '../../worker/store/device-store.ts'
import { DB_VERSION } from '../../worker/store/idb-schema.ts'
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

  test('clear() deletes everything', async () => {
    const store = await openStore()
    await store.appendEvents(eventsAt(1, 2))
    await store.saveGlobal({ fingerprint: 'f', version: 1, weights: new Float32Array(2) })
    await store.saveLocal({ fingerprint: 'f', user: new Float32Array(1), tuned: null })
    await store.setMeta('lastTrainedAt', 1)
    await store.addRound({ roundId: 1, model: 'm', at: 1, elements: 1 })
    await store.clear()
    expect((await store.summarizeEvents()).count).toBe(0)
    expect(await store.loadGlobal()).toBeNull()
    expect(await store.loadLocal()).toBeNull()
    expect(await store.getMeta('lastTrainedAt')).toBeNull()
    expect(await store.countRounds()).toBe(0)
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

  test('creates the version-1 schema from nothing', async () => {
    const name = freshDbName()
    const store = await IdbDeviceStore.open(name)
    await store.close()
    const raw = await rawOpen(name)
    expect(raw.version).toBe(DB_VERSION)
    expect([...raw.objectStoreNames].sort()).toEqual(['events', 'meta', 'models', 'rounds'])
    const events = raw.transaction('events').objectStore('events')
    expect(events.autoIncrement).toBe(true)
    expect([...events.indexNames].sort()).toEqual(['by-at', 'by-kind'])
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
