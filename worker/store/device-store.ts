/**
 * What the worker keeps on the device, behind one interface with two implementations:
 * `IdbDeviceStore` (IndexedDB, browsers) and `MemoryDeviceStore` (Node simulations, tests).
 * Both are checked by one shared test suite (STYLE.md #5).
 *
 * Failures surface as `HearthError`: `HEARTH_ERR_STORAGE_QUOTA` when the device is out of space,
 * `HEARTH_ERR_STORAGE` (with the original error as `cause`) for anything else.
 * `QuotaRecoveringStore` (quota.ts) wraps either one to free space and retry.
 */
import type { EventKind, InteractionEvent } from '../../protocol/events.ts'
import type { RoundParticipation } from '../api.ts'

/** The last global model the device installed. */
export interface StoredGlobal {
  /** The spec the weights fit (`specFingerprint`); weights of another spec are ignored. */
  readonly fingerprint: string
  readonly version: number
  /** Federated weights in spec order. */
  readonly weights: Float32Array
}

/** Federated weights fine-tuned on the device, with the global version they started from. */
export interface TunedWeights {
  readonly baseVersion: number | null
  readonly weights: Float32Array
}

/** The device's own part of the model. Never leaves the device. */
export interface StoredLocal {
  readonly fingerprint: string
  /** The user vector (`user_embedding`). */
  readonly user: Float32Array
  /** Set by local fine-tuning; dropped when a new global version is installed. */
  readonly tuned: TunedWeights | null
}

/** Counts of the stored events, for `stats()`. */
export interface EventSummary {
  readonly count: number
  readonly byKind: Readonly<Record<EventKind, number>>
  readonly oldestAt: number | null
  readonly newestAt: number | null
}

/** Small numeric facts the device remembers. */
export interface DeviceMeta {
  /** When training last finished (epoch ms). */
  readonly lastTrainedAt: number
  /** Events dropped so far to free space, for the preferences panel (DESIGN.md §6). */
  readonly eventsDropped: number
}

export type MetaKey = keyof DeviceMeta

export interface DeviceStore {
  /** Appends events in one transaction: all of them are stored, or none. */
  appendEvents(events: readonly InteractionEvent[]): Promise<void>
  /** Up to `limit` events, newest (largest `at`) first. */
  recentEvents(limit: number): Promise<InteractionEvent[]>
  summarizeEvents(): Promise<EventSummary>
  /**
   * Deletes the `count` oldest events (smallest `at`) and adds the number deleted to
   * `eventsDropped`, in one transaction. Returns the number deleted.
   */
  dropOldestEvents(count: number): Promise<number>
  loadGlobal(): Promise<StoredGlobal | null>
  saveGlobal(model: StoredGlobal): Promise<void>
  loadLocal(): Promise<StoredLocal | null>
  saveLocal(model: StoredLocal): Promise<void>
  getMeta(key: MetaKey): Promise<number | null>
  setMeta(key: MetaKey, value: number): Promise<void>
  /** Remembers a round; noting the same round of the same model twice keeps one entry. */
  addRound(entry: RoundParticipation): Promise<void>
  countRounds(): Promise<number>
  /** Deletes everything: events, models, meta and rounds. */
  clear(): Promise<void>
  close(): Promise<void>
}

/** An `EventSummary` with every kind at zero, to count into. */
export function emptyKindCounts(): Record<EventKind, number> {
  return { view: 0, click: 0, like: 0, purchase: 0, dismiss: 0, dislike: 0 }
}
