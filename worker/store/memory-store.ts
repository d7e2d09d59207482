/**
 * A `DeviceStore` in memory: for Node, where hundreds of simulated devices share one process and
 * there is no IndexedDB, and for tests. Values are copied in and out (`structuredClone`), as
 * IndexedDB would, so a caller never shares an array with the store.
 */
import { HearthError } from '../../protocol/errors.ts'
import type { InteractionEvent } from '../../protocol/events.ts'
import type { RoundParticipation } from '../api.ts'
import { emptyKindCounts } from './device-store.ts'
import { storageError } from './errors.ts'
import type { DeviceStore, EventSummary, MetaKey, StoredGlobal, StoredLocal } from './device-store.ts'

export class MemoryDeviceStore implements DeviceStore {
  /** Events in insertion order; `seq` breaks ties of `at` so "oldest" is deterministic. */
  #events: { seq: number; event: InteractionEvent }[] = []
  #seq = 0
  #global: StoredGlobal | null = null
  #local: StoredLocal | null = null
  readonly #meta = new Map<MetaKey, number>()
  readonly #rounds = new Map<string, RoundParticipation>()
  #closed = false

  async appendEvents(events: readonly InteractionEvent[]): Promise<void> {
    this.#assertOpen()
    let copies: InteractionEvent[]
    try {
      // Clone all first: a value that cannot be cloned fails the whole batch, as in IndexedDB.
      copies = events.map((event) => structuredClone(event))
    } catch (error) {
      throw storageError(error, 'appending events')
    }
    for (const event of copies) this.#events.push({ seq: this.#seq++, event })
  }

  async recentEvents(limit: number): Promise<InteractionEvent[]> {
    this.#assertOpen()
    const sorted = this.#byAge()
    return sorted
      .slice(Math.max(0, sorted.length - Math.max(0, limit)))
      .reverse()
      .map(({ event }) => structuredClone(event))
  }

  async summarizeEvents(): Promise<EventSummary> {
    this.#assertOpen()
    const byKind = emptyKindCounts()
    let oldestAt: number | null = null
    let newestAt: number | null = null
    for (const { event } of this.#events) {
      byKind[event.kind]++
      oldestAt = oldestAt === null ? event.at : Math.min(oldestAt, event.at)
      newestAt = newestAt === null ? event.at : Math.max(newestAt, event.at)
    }
    return { count: this.#events.length, byKind, oldestAt, newestAt }
  }

  async dropOldestEvents(count: number): Promise<number> {
    this.#assertOpen()
    const n = Math.min(Math.max(0, Math.floor(count)), this.#events.length)
    if (n === 0) return 0
    this.#events = this.#byAge().slice(n)
    this.#meta.set('eventsDropped', (this.#meta.get('eventsDropped') ?? 0) + n)
    return n
  }

  async loadGlobal(): Promise<StoredGlobal | null> {
    this.#assertOpen()
    return this.#global === null ? null : structuredClone(this.#global)
  }

  async saveGlobal(model: StoredGlobal): Promise<void> {
    this.#assertOpen()
    this.#global = structuredClone(model)
  }

  async loadLocal(): Promise<StoredLocal | null> {
    this.#assertOpen()
    return this.#local === null ? null : structuredClone(this.#local)
  }

  async saveLocal(model: StoredLocal): Promise<void> {
    this.#assertOpen()
    this.#local = structuredClone(model)
  }

  async getMeta(key: MetaKey): Promise<number | null> {
    this.#assertOpen()
    return this.#meta.get(key) ?? null
  }

  async setMeta(key: MetaKey, value: number): Promise<void> {
    this.#assertOpen()
    this.#meta.set(key, value)
  }

  async addRound(entry: RoundParticipation): Promise<void> {
    this.#assertOpen()
    this.#rounds.set(JSON.stringify([entry.model, entry.roundId]), structuredClone(entry))
  }

  async countRounds(): Promise<number> {
    this.#assertOpen()
    return this.#rounds.size
  }

  async clear(): Promise<void> {
    this.#assertOpen()
    this.#events = []
    this.#global = null
    this.#local = null
    this.#meta.clear()
    this.#rounds.clear()
  }

  async close(): Promise<void> {
    this.#closed = true
  }

  /** Events sorted oldest first: by `at`, then by insertion. */
  #byAge(): { seq: number; event: InteractionEvent }[] {
    return [...this.#events].sort((a, b) => a.event.at - b.event.at || a.seq - b.seq)
  }

  #assertOpen(): void {
    if (this.#closed) throw new HearthError('HEARTH_ERR_STORAGE', 'the store is closed')
  }
}
