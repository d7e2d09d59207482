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
import type { PersonalizationSettings } from '../../protocol/personal-data.ts'
import type { DecisionRecord } from '../../protocol/ranking.ts'
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
  /** The user vector was fitted on the user's data (absent in stores written before v2 code: treat as true). */
  readonly fitted?: boolean
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
  /** Events deleted so far because they were older than the retention window. */
  readonly eventsExpired: number
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
  /** Every round noted, oldest first. */
  listRounds(): Promise<RoundParticipation[]>

  // ---- personalization (schema version 2) ----------------------------------------------------

  /** Stored events, or only those with `at` >= `since` (epoch ms). */
  countEvents(since?: number): Promise<number>
  /**
   * Deletes every event with `at` < `before` (the retention window) and adds the number deleted
   * to `eventsExpired`, in one transaction. Returns the number deleted.
   */
  expireEvents(before: number): Promise<number>
  /** Removes the named features from every stored event that has them; returns how many changed. */
  redactEventFeatures(names: readonly string[]): Promise<number>
  /** Stores a decision, replacing the one with the same id (outcomes are added that way). */
  putDecision(decision: DecisionRecord): Promise<void>
  /** Up to `limit` decisions, newest (largest `at`) first. */
  recentDecisions(limit: number): Promise<DecisionRecord[]>
  countDecisions(): Promise<number>
  /** Deletes decisions older than `before`, then the oldest beyond the newest `keep`; returns how many. */
  pruneDecisions(before: number, keep: number): Promise<number>
  loadSettings(): Promise<PersonalizationSettings | null>
  saveSettings(settings: PersonalizationSettings): Promise<void>

  /** Deletes everything: events, models, meta, rounds, decisions and settings. */
  clear(): Promise<void>
  close(): Promise<void>
}

/** An `EventSummary` with every kind at zero, to count into. */
export function emptyKindCounts(): Record<EventKind, number> {
  return { view: 0, click: 0, like: 0, purchase: 0, dismiss: 0, dislike: 0 }
}
