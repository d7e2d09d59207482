/**
 * Graceful degradation when the device runs out of storage (DESIGN.md §6): a write that fails
 * for quota drops the oldest events and is retried once; if it fails again the caller gets
 * `HEARTH_ERR_STORAGE_QUOTA`. Old events are the cheapest thing to lose: the model has already
 * learned from them, and recent behaviour says more about the user's taste today.
 *
 * A decorator over any `DeviceStore`, so both implementations behave alike and the policy lives
 * in one place.
 */
import { HearthError } from '../../protocol/errors.ts'
import type { InteractionEvent } from '../../protocol/events.ts'
import type { PersonalizationSettings } from '../../protocol/personal-data.ts'
import type { DecisionRecord } from '../../protocol/ranking.ts'
import type { RoundParticipation } from '../api.ts'
import type { DeviceStore, EventSummary, MetaKey, StoredGlobal, StoredLocal } from './device-store.ts'
import { isQuotaError } from './errors.ts'

export interface QuotaPolicy {
  /**
   * Fraction of the stored events to drop on a quota failure (at least as many as the batch
   * being written). Dropping a slice, not one event, keeps the next writes from failing too.
   */
  readonly dropFraction: number
}

export const DEFAULT_QUOTA_POLICY: QuotaPolicy = { dropFraction: 0.1 }

export class QuotaRecoveringStore implements DeviceStore {
  readonly #inner: DeviceStore
  readonly #policy: QuotaPolicy

  constructor(inner: DeviceStore, policy: QuotaPolicy = DEFAULT_QUOTA_POLICY) {
    if (!(policy.dropFraction > 0 && policy.dropFraction <= 1)) {
      throw new RangeError(`policy.dropFraction must be in (0, 1], got ${policy.dropFraction}`)
    }
    this.#inner = inner
    this.#policy = policy
  }

  appendEvents(events: readonly InteractionEvent[]): Promise<void> {
    return this.#withRecovery(events.length, () => this.#inner.appendEvents(events))
  }

  saveGlobal(model: StoredGlobal): Promise<void> {
    return this.#withRecovery(0, () => this.#inner.saveGlobal(model))
  }

  saveLocal(model: StoredLocal): Promise<void> {
    return this.#withRecovery(0, () => this.#inner.saveLocal(model))
  }

  addRound(entry: RoundParticipation): Promise<void> {
    return this.#withRecovery(0, () => this.#inner.addRound(entry))
  }

  setMeta(key: MetaKey, value: number): Promise<void> {
    return this.#withRecovery(0, () => this.#inner.setMeta(key, value))
  }

  putDecision(decision: DecisionRecord): Promise<void> {
    return this.#withRecovery(0, () => this.#inner.putDecision(decision))
  }

  saveSettings(settings: PersonalizationSettings): Promise<void> {
    return this.#withRecovery(0, () => this.#inner.saveSettings(settings))
  }

  redactEventFeatures(names: readonly string[]): Promise<number> {
    return this.#inner.redactEventFeatures(names)
  }

  listRounds(): Promise<RoundParticipation[]> {
    return this.#inner.listRounds()
  }

  countEvents(since?: number): Promise<number> {
    return this.#inner.countEvents(since)
  }

  expireEvents(before: number): Promise<number> {
    return this.#inner.expireEvents(before)
  }

  recentDecisions(limit: number): Promise<DecisionRecord[]> {
    return this.#inner.recentDecisions(limit)
  }

  countDecisions(): Promise<number> {
    return this.#inner.countDecisions()
  }

  pruneDecisions(before: number, keep: number): Promise<number> {
    return this.#inner.pruneDecisions(before, keep)
  }

  loadSettings(): Promise<PersonalizationSettings | null> {
    return this.#inner.loadSettings()
  }

  recentEvents(limit: number): Promise<InteractionEvent[]> {
    return this.#inner.recentEvents(limit)
  }

  summarizeEvents(): Promise<EventSummary> {
    return this.#inner.summarizeEvents()
  }

  dropOldestEvents(count: number): Promise<number> {
    return this.#inner.dropOldestEvents(count)
  }

  loadGlobal(): Promise<StoredGlobal | null> {
    return this.#inner.loadGlobal()
  }

  loadLocal(): Promise<StoredLocal | null> {
    return this.#inner.loadLocal()
  }

  getMeta(key: MetaKey): Promise<number | null> {
    return this.#inner.getMeta(key)
  }

  countRounds(): Promise<number> {
    return this.#inner.countRounds()
  }

  clear(): Promise<void> {
    return this.#inner.clear()
  }

  close(): Promise<void> {
    return this.#inner.close()
  }

  async #withRecovery(incoming: number, write: () => Promise<void>): Promise<void> {
    try {
      return await write()
    } catch (error) {
      if (!isQuotaError(error)) throw error
    }
    const { count } = await this.#inner.summarizeEvents()
    const dropped = await this.#inner.dropOldestEvents(Math.max(incoming, Math.ceil(count * this.#policy.dropFraction)))
    try {
      return await write()
    } catch (error) {
      if (!isQuotaError(error)) throw error
      throw new HearthError('HEARTH_ERR_STORAGE_QUOTA', `still full after dropping the ${dropped} oldest events`, { cause: error })
    }
  }
}
