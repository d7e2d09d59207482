/**
 * A `DeviceStore` in memory: for Node, where hundreds of simulated devices share one process and
 * there is no IndexedDB, and for tests. Values are copied in and out (`structuredClone`), as
 * IndexedDB would, so a caller never shares an array with the store.
 */
import { HearthError } from '../../protocol/errors.ts'
import type { InteractionEvent } from '../../protocol/events.ts'
import type { PersonalizationSettings } from '../../protocol/personal-data.ts'
import type { DecisionRecord } from '../../protocol/ranking.ts'
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
  readonly #decisions = new Map<string, DecisionRecord>()
  #settings: PersonalizationSettings | null = null
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

  async listRounds(): Promise<RoundParticipation[]> {
    this.#assertOpen()
    return [...this.#rounds.values()].sort((a, b) => a.at - b.at).map((entry) => structuredClone(entry))
  }

  async countEvents(since?: number): Promise<number> {
    this.#assertOpen()
    return since === undefined ? this.#events.length : this.#events.filter(({ event }) => event.at >= since).length
  }

  async expireEvents(before: number): Promise<number> {
    this.#assertOpen()
    const kept = this.#events.filter(({ event }) => event.at >= before)
    const expired = this.#events.length - kept.length
    this.#events = kept
    if (expired > 0) this.#meta.set('eventsExpired', (this.#meta.get('eventsExpired') ?? 0) + expired)
    return expired
  }

  async redactEventFeatures(names: readonly string[]): Promise<number> {
    this.#assertOpen()
    let changed = 0
    for (const entry of this.#events) {
      const features = entry.event.features
      if (features === undefined || !names.some((name) => name in features)) continue
      const { features: _, ...rest } = entry.event
      const kept = Object.fromEntries(Object.entries(features).filter(([name]) => !names.includes(name)))
      entry.event = Object.keys(kept).length === 0 ? rest : { ...rest, features: kept }
      changed++
    }
    return changed
  }

  async putDecision(decision: DecisionRecord): Promise<void> {
    this.#assertOpen()
    let copy: DecisionRecord
    try {
      copy = structuredClone(decision)
    } catch (error) {
      throw storageError(error, 'logging a decision')
    }
    this.#decisions.set(decision.id, copy)
  }

  async recentDecisions(limit: number): Promise<DecisionRecord[]> {
    this.#assertOpen()
    return this.#decisionsByAge()
      .reverse()
      .slice(0, Math.max(0, limit))
      .map((d) => structuredClone(d))
  }

  async countDecisions(): Promise<number> {
    this.#assertOpen()
    return this.#decisions.size
  }

  async pruneDecisions(before: number, keep: number): Promise<number> {
    this.#assertOpen()
    const byAge = this.#decisionsByAge()
    const old = byAge.filter((d) => d.at < before)
    const young = byAge.filter((d) => d.at >= before)
    const gone = [...old, ...young.slice(0, Math.max(0, young.length - Math.max(0, keep)))]
    for (const d of gone) this.#decisions.delete(d.id)
    return gone.length
  }

  async loadSettings(): Promise<PersonalizationSettings | null> {
    this.#assertOpen()
    return this.#settings === null ? null : structuredClone(this.#settings)
  }

  async saveSettings(settings: PersonalizationSettings): Promise<void> {
    this.#assertOpen()
    this.#settings = structuredClone(settings)
  }

  async clear(): Promise<void> {
    this.#assertOpen()
    this.#events = []
    this.#global = null
    this.#local = null
    this.#meta.clear()
    this.#rounds.clear()
    this.#decisions.clear()
    this.#settings = null
  }

  /** Decisions oldest first (insertion order breaks ties, as Map iteration keeps it). */
  #decisionsByAge(): DecisionRecord[] {
    return [...this.#decisions.values()].sort((a, b) => a.at - b.at)
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
