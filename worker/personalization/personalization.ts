/**
 * The device's personalization state beside the model: settings (paused, consent), what the
 * model may read (sensitive features withheld without consent), the user's history for reasons,
 * the items the device has seen (negatives for training), the decision log with outcomes, and
 * the retention and size limits of what is stored. `rank()` itself is here too: it runs on the
 * serving model, outside the worker's training queue, so a ranking never waits for a round.
 */
import { HearthError } from '../../protocol/errors.ts'
import type { EventContext, InteractionEvent } from '../../protocol/events.ts'
import { withoutFeatures } from '../../protocol/features.ts'
import type { UniformSource } from '../../protocol/model-spec.ts'
import { assertConsentCategory, DEFAULT_SETTINGS, withheldFeatures } from '../../protocol/personal-data.ts'
import type { PersonalizationSettings, SensitiveFeatures } from '../../protocol/personal-data.ts'
import {
  appOrderColumns,
  appOrderReason,
  DEFAULT_EXPLORATION,
  DEFAULT_EXPLORATION_SLOTS,
  DEFAULT_THOMPSON_SAMPLES,
  LOGGED_REASONS,
  MAX_OUTCOMES,
  reasonAt,
} from '../../protocol/ranking.ts'
import type { DecisionOutcome, DecisionRecord, ExplorationConfig, LoggedCandidate, RankColumns, RankOptions } from '../../protocol/ranking.ts'
import { MAX_NEGATIVE_POOL } from '../model/examples.ts'
import { withWithheld } from '../model/item-encoding.ts'
import type { ItemEncoding, ItemRef } from '../model/item-encoding.ts'
import type { HearthModel } from '../model/hearth-model.ts'
import { CandidateEncoder } from '../rank/candidates.ts'
import { epsilonGreedyPlacements, greedyOrder, greedyPlacements, thompsonPlacements } from '../rank/exploration.ts'
import type { Placement } from '../rank/exploration.ts'
import { Ranker } from '../rank/ranker.ts'
import { reasonColumns } from '../rank/reasons.ts'
import type { DeviceStore } from '../store/device-store.ts'
import { buildHistory, MAX_HISTORY } from './history.ts'

/** What the app decides about personalization (`WorkerInitOptions.personalization`). */
export interface PersonalizationOptions {
  /** Feature name → consent category. Such features are never read or stored without consent. */
  readonly sensitiveFeatures?: SensitiveFeatures
  /** Events older than this many days are deleted. Default 180. */
  readonly retentionDays?: number
  /** Most events kept; the oldest go first. Default 50,000. */
  readonly maxEvents?: number
  /** Most decisions kept in the log; the oldest go first. Default 200. */
  readonly maxDecisions?: number
  /** How `rank()` explores. Default epsilon-greedy, ε = 0.05, top 10 slots. */
  readonly exploration?: ExplorationConfig
  /** An event on an item counts as the outcome of a decision that ranked it this long before. Default 30 min. */
  readonly attributionWindowMs?: number
}

export const DEFAULT_RETENTION_DAYS = 180
export const DEFAULT_MAX_EVENTS = 50_000
export const DEFAULT_MAX_DECISIONS = 200
export const DEFAULT_ATTRIBUTION_WINDOW_MS = 30 * 60_000
const DAY_MS = 86_400_000
/** Retention runs at most this often. */
const EXPIRY_INTERVAL_MS = 60_000
/** Decisions kept in memory for outcome attribution. */
const RECENT_DECISIONS = 32
/** Events read to build the history. */
const HISTORY_EVENTS = 4 * MAX_HISTORY

/**
 * Resolves in a later task. A call's reply is posted from microtasks once its promise settles
 * (comlink), so work queued behind this runs after the reply has left.
 */
function afterReply(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0))
}

/** The model state ranking depends on, as the core knows it. */
export interface ServingState {
  /** A global version is installed, or the device fine-tuned a model of its own. */
  readonly hasModel: boolean
  /** The local part was fitted on the user's data: the personal term means something. */
  readonly fitted: boolean
  readonly modelVersion: number | null
}

interface RecentDecision {
  record: DecisionRecord
  readonly positions: ReadonlyMap<string, number>
}

type Resolved = Required<Omit<PersonalizationOptions, 'sensitiveFeatures'>> & { readonly sensitiveFeatures: SensitiveFeatures }

function resolve(options: PersonalizationOptions): Resolved {
  return {
    sensitiveFeatures: options.sensitiveFeatures ?? {},
    retentionDays: options.retentionDays ?? DEFAULT_RETENTION_DAYS,
    maxEvents: options.maxEvents ?? DEFAULT_MAX_EVENTS,
    maxDecisions: options.maxDecisions ?? DEFAULT_MAX_DECISIONS,
    exploration: options.exploration ?? DEFAULT_EXPLORATION,
    attributionWindowMs: options.attributionWindowMs ?? DEFAULT_ATTRIBUTION_WINDOW_MS,
  }
}

export class Personalization {
  readonly #store: DeviceStore
  readonly #model: HearthModel
  readonly #ranker: Ranker
  readonly #encoder = new CandidateEncoder()
  readonly #options: Resolved
  readonly #sensitiveNames: ReadonlySet<string>
  readonly #uniform: UniformSource
  readonly #now: () => number
  #settings: PersonalizationSettings = DEFAULT_SETTINGS
  #withheld: ReadonlySet<string>
  #historyStale = true
  /** Items seen in rankings, least recently seen first. */
  readonly #seen = new Map<string, LoggedCandidate>()
  #recent: RecentDecision[] = []
  #writes: Promise<void> = Promise.resolve()
  /** Decisions logged but not yet built into a record and remembered (`#log`). */
  readonly #unsettled = new Set<() => DecisionRecord>()
  #lastExpiry = -Infinity
  #logged = 0

  private constructor(store: DeviceStore, model: HearthModel, options: PersonalizationOptions, uniform: UniformSource, now: () => number) {
    this.#store = store
    this.#model = model
    this.#ranker = new Ranker(model)
    this.#options = resolve(options)
    this.#sensitiveNames = new Set(Object.keys(this.#options.sensitiveFeatures))
    this.#withheld = withheldFeatures(this.#options.sensitiveFeatures, {})
    this.#uniform = uniform
    this.#now = now
  }

  /** Loads settings and the recent decisions from `store`; `model` is the serving model. */
  static async open(store: DeviceStore, model: HearthModel, options: PersonalizationOptions, uniform: UniformSource, now: () => number): Promise<Personalization> {
    const p = new Personalization(store, model, options, uniform, now)
    p.#applySettings((await store.loadSettings()) ?? DEFAULT_SETTINGS)
    const decisions = await store.recentDecisions(p.#options.maxDecisions)
    for (const record of [...decisions].reverse()) p.#remember(record)
    return p
  }

  get settings(): PersonalizationSettings {
    return this.#settings
  }

  /** How the model reads items now: the model's encoding minus the withheld features. */
  get encoding(): ItemEncoding {
    return withWithheld(this.#model.encoding, this.#withheld)
  }

  /** Items seen in rankings, most recent first (negatives are drawn from them). */
  seenItems(): ItemRef[] {
    this.#settleLogs()
    return [...this.#seen.values()].reverse()
  }

  /**
   * What of `events` may be stored: nothing while paused; otherwise the events without the
   * sensitive features the user has not consented to.
   */
  admit(events: readonly InteractionEvent[]): InteractionEvent[] {
    if (this.#settings.paused) return []
    if (this.#withheld.size === 0) return [...events]
    return events.map((event) => {
      if (event.features === undefined) return event
      const features = withoutFeatures(event.features, this.#withheld)
      if (features === event.features) return event
      const { features: _, ...rest } = event
      return Object.keys(features).length === 0 ? rest : { ...rest, features }
    })
  }

  /** After `events` were stored: outcomes of recent decisions, retention and size limits. */
  async recorded(events: readonly InteractionEvent[]): Promise<void> {
    if (events.length === 0) return
    this.#settleLogs()
    this.#historyStale = true
    await this.#attribute(events)
    // Expired events first: they should not count against the size limit.
    await this.enforceRetention()
    const { maxEvents } = this.#options
    const count = await this.#store.countEvents()
    if (count > maxEvents) await this.#store.dropOldestEvents(count - maxEvents)
  }

  /** Deletes events and decisions older than the retention window (at most once a minute unless forced). */
  async enforceRetention(force = false): Promise<void> {
    const now = this.#now()
    if (!force && now - this.#lastExpiry < EXPIRY_INTERVAL_MS) return
    this.#lastExpiry = now
    this.#settleLogs()
    const before = now - this.#options.retentionDays * DAY_MS
    await this.#store.expireEvents(before)
    await this.#store.pruneDecisions(before, this.#options.maxDecisions)
    this.#recent = this.#recent.filter((d) => d.record.at >= before)
  }

  /** The serving model's weights or local values changed. */
  servingChanged(): void {
    this.#ranker.invalidate()
  }

  async setConsent(category: string, granted: boolean): Promise<PersonalizationSettings> {
    assertConsentCategory(category, 'category')
    if (typeof granted !== 'boolean') throw new HearthError('HEARTH_ERR_INVALID_ARGUMENT', 'granted must be a boolean')
    const settings = { ...this.#settings, consent: { ...this.#settings.consent, [category]: granted }, updatedAt: this.#now() }
    await this.#store.saveSettings(settings)
    this.#applySettings(settings)
    if (!granted) {
      // Revoked: what was stored under the consent goes too.
      const names = Object.entries(this.#options.sensitiveFeatures).filter(([, c]) => c === category).map(([name]) => name)
      if (names.length > 0) await this.#store.redactEventFeatures(names)
    }
    return settings
  }

  async setPaused(paused: boolean): Promise<PersonalizationSettings> {
    if (typeof paused !== 'boolean') throw new HearthError('HEARTH_ERR_INVALID_ARGUMENT', 'paused must be a boolean')
    return this.#saveSettings({ paused })
  }

  async setFederated(federated: boolean): Promise<PersonalizationSettings> {
    if (typeof federated !== 'boolean') throw new HearthError('HEARTH_ERR_INVALID_ARGUMENT', 'federated must be a boolean')
    return this.#saveSettings({ federated })
  }

  async #saveSettings(change: Partial<Pick<PersonalizationSettings, 'paused' | 'federated'>>): Promise<PersonalizationSettings> {
    const settings = { ...this.#settings, ...change, updatedAt: this.#now() }
    await this.#store.saveSettings(settings)
    this.#applySettings(settings)
    return settings
  }

  /**
   * Ranks `candidates` (validated) with the serving model; see protocol/ranking.ts. Columns, not
   * objects: the page builds the `RankResult` (`unpackRanking`).
   */
  async rank(candidates: readonly LoggedCandidate[], context: EventContext | undefined, options: RankOptions, state: ServingState): Promise<RankColumns> {
    if (this.#settings.paused) return appOrderColumns(candidates.length, appOrderReason('paused'), state.modelVersion)
    if (!state.hasModel) return this.#appOrder(candidates, state, context, options)
    const exploration = options.exploration ?? this.#options.exploration
    if (this.#historyStale) await this.#rebuildHistory()
    const engaged = this.#ranker.history?.engaged.length ?? 0
    const personal = state.fitted && engaged > 0
    const slots = exploration.method === 'none' ? 0 : (exploration.slots ?? DEFAULT_EXPLORATION_SLOTS)
    const thompson = exploration.method === 'thompson' && personal
    const computed = await this.#ranker.compute(
      this.#encoder.encode(candidates, this.encoding),
      personal,
      thompson
        ? { draws: (exploration.samples ?? DEFAULT_THOMPSON_SAMPLES) + 1, scale: exploration.scale ?? 1, top: slots + 1, uniform: this.#uniform }
        : undefined,
    )
    const order = greedyOrder(computed.scores)
    let placements: Placement[]
    if (exploration.method === 'epsilon-greedy') placements = epsilonGreedyPlacements(order, exploration.epsilon, slots, this.#uniform)
    else if (thompson && computed.topByDraw !== null) placements = thompsonPlacements(order, computed.topByDraw, slots)
    else placements = greedyPlacements(order)
    const n = placements.length
    const positions = new Int32Array(n)
    const scores = new Float32Array(n)
    const propensities = new Float64Array(n)
    for (let p = 0; p < n; p++) {
      const { index, propensity } = placements[p] as Placement
      positions[p] = index
      scores[p] = computed.scores[index] as number
      propensities[p] = propensity
    }
    const logged = (thompson || exploration.method !== 'thompson') ? exploration : ({ method: 'none' } as const)
    const columns: RankColumns = {
      decision: null,
      modelVersion: state.modelVersion,
      exploration: logged.method,
      order: positions,
      scores,
      propensities,
      ...reasonColumns(computed, placements),
    }
    return options.log === false ? columns : { ...columns, decision: this.#log(candidates, context, logged, columns, state) }
  }

  /** Resolves once every decision logged so far is stored. */
  flush(): Promise<void> {
    return this.#writes
  }

  /** After all data was deleted: back to defaults, nothing remembered. */
  reset(): void {
    this.#applySettings(DEFAULT_SETTINGS)
    this.#seen.clear()
    this.#encoder.clear()
    this.#recent = []
    this.#historyStale = true
    this.#ranker.setHistory(null)
  }

  dispose(): void {
    this.#ranker.dispose()
  }

  #applySettings(settings: PersonalizationSettings): void {
    const before = [...this.#withheld].join('\u0000')
    this.#settings = settings
    this.#withheld = withheldFeatures(this.#options.sensitiveFeatures, settings.consent)
    if ([...this.#withheld].join('\u0000') !== before) this.#historyStale = true
  }

  async #rebuildHistory(): Promise<void> {
    this.#historyStale = false
    const events = await this.#store.recentEvents(HISTORY_EVENTS)
    this.#ranker.setHistory(buildHistory(events, this.encoding))
  }

  /** Without a model the app's order is still a decision worth logging. */
  #appOrder(candidates: readonly LoggedCandidate[], state: ServingState, context: EventContext | undefined, options: RankOptions): RankColumns {
    const columns = appOrderColumns(candidates.length, appOrderReason('no-model'), state.modelVersion)
    return options.log === false ? columns : { ...columns, decision: this.#log(candidates, context, { method: 'none' }, columns, state) }
  }

  /**
   * Logs a decision: only its id, time and a copy of the columns now (their buffers go to the
   * page with the reply). Building the record of n candidates, remembering it (outcomes, seen
   * items) and storing it happen in a task after the reply is posted, so none of it is the
   * caller's wait. Never lost or late: whatever reads what a record feeds (`recorded`,
   * `seenItems`, `enforceRetention`) settles pending records first, and `flush()` (which
   * `decisions()`, `close()` and `deleteData()` wait for) waits for the write.
   */
  #log(candidates: readonly LoggedCandidate[], context: EventContext | undefined, exploration: ExplorationConfig, columns: RankColumns, state: ServingState): string {
    const id = crypto.randomUUID()
    const at = this.#now()
    const order = columns.order.slice()
    const scores = columns.scores.slice()
    const propensities = columns.propensities.slice()
    const reasons = Array.from({ length: Math.min(LOGGED_REASONS, order.length) }, (_, p) => reasonAt(columns, p))
    let record: DecisionRecord | null = null
    const settle = (): DecisionRecord => {
      if (record !== null) return record
      const logged = candidates.map((c) => {
        if (c.features === undefined) return c
        const features = withoutFeatures(c.features, this.#sensitiveNames)
        return Object.keys(features).length === 0 ? { item: c.item } : { item: c.item, features }
      })
      record = {
        id,
        at,
        modelVersion: state.modelVersion,
        exploration,
        ...(context === undefined ? {} : { context }),
        candidates: logged,
        order: Array.from(order),
        scores: Array.from(scores),
        propensities: Array.from(propensities),
        reasons,
        outcomes: [],
      }
      this.#unsettled.delete(settle)
      this.#remember(record)
      return record
    }
    this.#unsettled.add(settle)
    const prune = ++this.#logged % 10 === 0
    this.#write(async () => {
      await afterReply()
      this.#settleLogs()
      await this.#store.putDecision(settle())
      if (prune) await this.#store.pruneDecisions(this.#now() - this.#options.retentionDays * DAY_MS, this.#options.maxDecisions)
    })
    return id
  }

  /** Builds and remembers every decision logged so far, in the order they were logged. */
  #settleLogs(): void {
    for (const settle of [...this.#unsettled]) settle()
  }

  #remember(record: DecisionRecord): void {
    this.#recent.push({ record, positions: new Map(record.order.map((index, position) => [(record.candidates[index] as LoggedCandidate).item, position])) })
    if (this.#recent.length > RECENT_DECISIONS) this.#recent.shift()
    for (const candidate of record.candidates) {
      this.#seen.delete(candidate.item)
      this.#seen.set(candidate.item, candidate)
    }
    // One walk from the oldest end. A fresh `keys().next()` per deletion would step again over
    // every entry deleted before it (a Map keeps deleted slots until it is rehashed): quadratic,
    // 5–8 ms per ranking of 1,000 new items.
    let excess = this.#seen.size - MAX_NEGATIVE_POOL
    for (const item of this.#seen.keys()) {
      if (excess-- <= 0) break
      this.#seen.delete(item)
    }
  }

  /** Adds each event as an outcome of the latest recent decision that ranked its item within the window. */
  async #attribute(events: readonly InteractionEvent[]): Promise<void> {
    const changed = new Set<RecentDecision>()
    for (const event of events) {
      for (let i = this.#recent.length - 1; i >= 0; i--) {
        const recent = this.#recent[i] as RecentDecision
        const { record } = recent
        const position = recent.positions.get(event.item)
        if (position === undefined || event.at < record.at || event.at > record.at + this.#options.attributionWindowMs) continue
        if (record.outcomes.length < MAX_OUTCOMES) {
          const outcome: DecisionOutcome = { item: event.item, kind: event.kind, at: event.at, position }
          recent.record = { ...record, outcomes: [...record.outcomes, outcome] }
          changed.add(recent)
        }
        break
      }
    }
    for (const recent of changed) {
      const record = recent.record
      this.#write(() => this.#store.putDecision(record))
    }
    await this.#writes
  }

  #write(task: () => Promise<void>): void {
    // Decision writes are chained so that a later outcome never lands before its decision.
    this.#writes = this.#writes.then(task).catch(() => undefined)
  }
}
