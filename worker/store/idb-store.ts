/**
 * A `DeviceStore` over IndexedDB, with `idb` (Jake Archibald's promise wrapper). Schema and
 * migrations are in `idb-schema.ts`. Every failure becomes a `HearthError` (see `errors.ts`).
 */
import { openDB } from 'idb'
import { HearthError } from '../../protocol/errors.ts'
import { EventKind } from '../../protocol/events.ts'
import type { InteractionEvent } from '../../protocol/events.ts'
import type { PersonalizationSettings } from '../../protocol/personal-data.ts'
import type { DecisionRecord } from '../../protocol/ranking.ts'
import type { RoundParticipation } from '../api.ts'
import { emptyKindCounts } from './device-store.ts'
import type { DeviceStore, EventSummary, MetaKey, StoredGlobal, StoredLocal } from './device-store.ts'
import { storageError } from './errors.ts'
import { DB_VERSION, upgradeDb } from './idb-schema.ts'
import type { HearthDb, HearthDbSchema } from './idb-schema.ts'

/** The parts of an idb transaction `commit` needs. */
interface Transaction {
  readonly done: Promise<void>
  abort(): void
}

/**
 * Issues requests in `tx` (pushed by `issue` onto the list it is given) and waits until the
 * transaction commits. If issuing a request throws (e.g. `DataCloneError`, or a quota error
 * raised synchronously), the transaction is aborted so that nothing of the batch is written. A
 * quota failure may also come from a request or from the commit itself (browsers often report
 * it as the transaction's abort error); both reject here.
 */
async function commit(tx: Transaction, issue: (requests: Promise<unknown>[]) => void): Promise<void> {
  const requests: Promise<unknown>[] = []
  try {
    issue(requests)
  } catch (error) {
    // The requests already issued and the transaction now fail with AbortError: expected.
    for (const request of [...requests, tx.done]) request.catch(() => undefined)
    try {
      tx.abort()
    } catch {
      // Already finished or aborted: nothing was committed by us.
    }
    throw error
  }
  await Promise.all([...requests, tx.done])
}

export class IdbDeviceStore implements DeviceStore {
  readonly name: string
  readonly #db: HearthDb
  /** Why the connection is unusable, once it is. */
  #lost: string | null = null

  private constructor(name: string, db: HearthDb) {
    this.name = name
    this.#db = db
  }

  /**
   * Opens (creating or upgrading) the database `name`. Throws `HEARTH_ERR_STORAGE` when
   * IndexedDB is unavailable or the database was written by a newer schema version.
   */
  static async open(name: string): Promise<IdbDeviceStore> {
    let store: IdbDeviceStore | undefined
    try {
      const db = await openDB<HearthDbSchema>(name, DB_VERSION, {
        upgrade: upgradeDb,
        // Another tab runs a newer build that must upgrade the schema: step aside, or it waits forever.
        blocking: () => {
          if (store !== undefined) store.#lose('closed so that a newer version of the app can upgrade the database')
        },
        terminated: () => {
          if (store !== undefined) store.#lose('the browser closed the database')
        },
      })
      store = new IdbDeviceStore(name, db)
      return store
    } catch (error) {
      throw storageError(error, `opening IndexedDB database "${name}"`)
    }
  }

  appendEvents(events: readonly InteractionEvent[]): Promise<void> {
    return this.#run('appending events', async (db) => {
      if (events.length === 0) return
      const tx = db.transaction('events', 'readwrite')
      await commit(tx, (requests) => {
        for (const event of events) requests.push(tx.store.add(event))
      })
    })
  }

  recentEvents(limit: number): Promise<InteractionEvent[]> {
    return this.#run('reading events', (db) => newest(db, 'events', limit))
  }

  summarizeEvents(): Promise<EventSummary> {
    return this.#run('counting events', async (db) => {
      const tx = db.transaction('events')
      const byAt = tx.store.index('by-at')
      const kinds = Object.values(EventKind)
      const [count, kindCounts, oldest, newest] = await Promise.all([
        tx.store.count(),
        Promise.all(kinds.map((kind) => tx.store.index('by-kind').count(kind))),
        byAt.openKeyCursor(),
        byAt.openKeyCursor(null, 'prev'),
        tx.done,
      ])
      const byKind = emptyKindCounts()
      kinds.forEach((kind, i) => (byKind[kind] = kindCounts[i] ?? 0))
      return { count, byKind, oldestAt: oldest?.key ?? null, newestAt: newest?.key ?? null }
    })
  }

  dropOldestEvents(count: number): Promise<number> {
    return this.#run('dropping old events', async (db) => {
      const n = Math.max(0, Math.floor(count))
      if (n === 0) return 0
      const tx = db.transaction(['events', 'meta'], 'readwrite')
      const events = tx.objectStore('events')
      const meta = tx.objectStore('meta')
      // Primary keys of the n smallest `at`, ties in insertion order (index order, IndexedDB 3.0 §2.7).
      const [keys, dropped] = await Promise.all([events.index('by-at').getAllKeys(null, n), meta.get('eventsDropped')])
      await commit(tx, (requests) => {
        for (const key of keys) requests.push(events.delete(key))
        requests.push(meta.put((dropped ?? 0) + keys.length, 'eventsDropped'))
      })
      return keys.length
    })
  }

  loadGlobal(): Promise<StoredGlobal | null> {
    return this.#run('reading the global model', async (db) => {
      const record = await db.get('models', 'global')
      if (record?.slot !== 'global') return null
      const { slot: _, ...model } = record
      return model
    })
  }

  saveGlobal(model: StoredGlobal): Promise<void> {
    return this.#run('saving the global model', async (db) => {
      await db.put('models', { slot: 'global', ...model })
    })
  }

  loadLocal(): Promise<StoredLocal | null> {
    return this.#run('reading the local model', async (db) => {
      const record = await db.get('models', 'local')
      if (record?.slot !== 'local') return null
      const { slot: _, ...model } = record
      return model
    })
  }

  saveLocal(model: StoredLocal): Promise<void> {
    return this.#run('saving the local model', async (db) => {
      await db.put('models', { slot: 'local', ...model })
    })
  }

  getMeta(key: MetaKey): Promise<number | null> {
    return this.#run(`reading ${key}`, async (db) => (await db.get('meta', key)) ?? null)
  }

  setMeta(key: MetaKey, value: number): Promise<void> {
    return this.#run(`writing ${key}`, async (db) => {
      await db.put('meta', value, key)
    })
  }

  addRound(entry: RoundParticipation): Promise<void> {
    return this.#run('noting a round', async (db) => {
      await db.put('rounds', entry)
    })
  }

  countRounds(): Promise<number> {
    return this.#run('counting rounds', (db) => db.count('rounds'))
  }

  listRounds(): Promise<RoundParticipation[]> {
    return this.#run('listing rounds', async (db) => (await db.getAll('rounds')).sort((a, b) => a.at - b.at))
  }

  countEvents(since?: number): Promise<number> {
    return this.#run('counting events', (db) => (since === undefined ? db.count('events') : db.countFromIndex('events', 'by-at', IDBKeyRange.lowerBound(since))))
  }

  expireEvents(before: number): Promise<number> {
    return this.#run('expiring old events', async (db) => {
      const tx = db.transaction(['events', 'meta'], 'readwrite')
      const events = tx.objectStore('events')
      const meta = tx.objectStore('meta')
      const range = IDBKeyRange.upperBound(before, true)
      const [keys, expired] = await Promise.all([events.index('by-at').getAllKeys(range), meta.get('eventsExpired')])
      await commit(tx, (requests) => {
        for (const key of keys) requests.push(events.delete(key))
        if (keys.length > 0) requests.push(meta.put((expired ?? 0) + keys.length, 'eventsExpired'))
      })
      return keys.length
    })
  }

  redactEventFeatures(names: readonly string[]): Promise<number> {
    return this.#run('erasing withheld features', async (db) => {
      if (names.length === 0) return 0
      const tx = db.transaction('events', 'readwrite')
      let changed = 0
      let cursor = await tx.store.openCursor()
      while (cursor !== null) {
        const event = cursor.value
        const features = event.features
        if (features !== undefined && names.some((name) => name in features)) {
          const { features: _, ...rest } = event
          const kept = Object.fromEntries(Object.entries(features).filter(([name]) => !names.includes(name)))
          await cursor.update(Object.keys(kept).length === 0 ? rest : { ...rest, features: kept })
          changed++
        }
        cursor = await cursor.continue()
      }
      await tx.done
      return changed
    })
  }

  putDecision(decision: DecisionRecord): Promise<void> {
    return this.#run('logging a decision', async (db) => {
      await db.put('decisions', decision)
    })
  }

  recentDecisions(limit: number): Promise<DecisionRecord[]> {
    return this.#run('reading decisions', (db) => newest(db, 'decisions', limit))
  }

  countDecisions(): Promise<number> {
    return this.#run('counting decisions', (db) => db.count('decisions'))
  }

  pruneDecisions(before: number, keep: number): Promise<number> {
    return this.#run('pruning decisions', async (db) => {
      const tx = db.transaction('decisions', 'readwrite')
      const byAt = tx.store.index('by-at')
      const [old, total] = await Promise.all([byAt.getAllKeys(IDBKeyRange.upperBound(before, true)), tx.store.count()])
      const excess = Math.max(0, total - old.length - Math.max(0, keep))
      // The oldest `excess` of the young ones follow the old ones in index order.
      const all = excess > 0 ? await byAt.getAllKeys(null, old.length + excess) : old
      await commit(tx, (requests) => {
        for (const key of all) requests.push(tx.store.delete(key))
      })
      return all.length
    })
  }

  loadSettings(): Promise<PersonalizationSettings | null> {
    return this.#run('reading settings', async (db) => (await db.get('settings', 'personalization')) ?? null)
  }

  saveSettings(settings: PersonalizationSettings): Promise<void> {
    return this.#run('saving settings', async (db) => {
      await db.put('settings', settings, 'personalization')
    })
  }

  clear(): Promise<void> {
    return this.#run('deleting all data', async (db) => {
      const tx = db.transaction(['events', 'models', 'meta', 'rounds', 'decisions', 'settings'], 'readwrite')
      await commit(tx, (requests) => {
        for (const name of tx.objectStoreNames) requests.push(tx.objectStore(name).clear())
      })
    })
  }

  async close(): Promise<void> {
    this.#lose('the store is closed')
  }

  #lose(reason: string): void {
    if (this.#lost !== null) return
    this.#lost = reason
    this.#db.close()
  }

  async #run<T>(operation: string, body: (db: HearthDb) => Promise<T>): Promise<T> {
    if (this.#lost !== null) throw new HearthError('HEARTH_ERR_STORAGE', `${operation}: ${this.#lost}`)
    try {
      return await body(this.#db)
    } catch (error) {
      throw storageError(error, operation)
    }
  }
}

/** Up to `limit` records of `store`, newest first, walking its `by-at` index backwards. */
async function newest<S extends 'events' | 'decisions'>(db: HearthDb, store: S, limit: number): Promise<HearthDbSchema[S]['value'][]> {
  const out: HearthDbSchema[S]['value'][] = []
  if (limit <= 0) return out
  const tx = db.transaction(store)
  let cursor = await tx.store.index('by-at').openCursor(null, 'prev')
  while (cursor !== null && out.length < limit) {
    out.push(cursor.value)
    cursor = await cursor.continue()
  }
  await tx.done
  return out
}
