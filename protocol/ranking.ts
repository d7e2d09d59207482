/**
 * Ranking on the device: what an app passes to `rank()`, what it gets back, how exploration is
 * configured, and the decision log each ranking leaves on the device (DESIGN.md §2.2). Wire types
 * and their checks only; the computation is in `worker/rank/`.
 *
 * Every ranked item carries a short, true reason, derived from the computation that placed it:
 * - `similar`: the personal term ⟨v_user, t(i)⟩ lifted it more than the prior did, and `item` is
 *   the item the user engaged with whose vector t is nearest to t(i) (cosine similarity);
 * - `popular`: the prior p(i), learned from everyone's data, lifted it more (or the device has
 *   no personal signal yet);
 * - `exploring`: exploration put it where it is, not its score;
 * - `app-order`: no model could rank (none downloaded yet, or personalization is paused), so the
 *   app's own order was kept.
 */
import { HearthError } from './errors.ts'
import type { EventContext, EventKind } from './events.ts'
import { MAX_ITEM_ID_LENGTH } from './events.ts'
import { toItemFeatures } from './features.ts'
import type { ItemFeatures } from './features.ts'

/** A candidate: an item id, or an id with the item's features. */
export type RankCandidate = string | { readonly item: string; readonly features?: ItemFeatures }

/** A candidate as stored in the decision log: features without the sensitive ones. */
export interface LoggedCandidate {
  readonly item: string
  readonly features?: ItemFeatures
}

export const ReasonKind = {
  Similar: 'similar',
  Popular: 'popular',
  Exploring: 'exploring',
  AppOrder: 'app-order',
} as const
export type ReasonKind = (typeof ReasonKind)[keyof typeof ReasonKind]

/** Why an item is where it is. `text` is a short English sentence an app may show as is. */
export type Reason =
  | {
      readonly kind: 'similar'
      /** The engaged item nearest in the model's item space. */
      readonly item: string
      /** The strongest way the user engaged with it. */
      readonly engagement: EventKind
      /** Cosine similarity of the two item vectors, in [-1, 1]. */
      readonly similarity: number
      readonly text: string
    }
  | { readonly kind: 'popular'; readonly text: string }
  | { readonly kind: 'exploring'; readonly text: string }
  | { readonly kind: 'app-order'; readonly why: 'no-model' | 'paused'; readonly text: string }

/** One item of a ranking. */
export interface RankedItem {
  readonly item: string
  /** The model's score (a logit: higher ranks first); 0 in the app's order. */
  readonly score: number
  readonly reason: Reason
  /**
   * Probability that the policy put this item at this position given the items above it (1 where
   * nothing was random). Logged, so off-policy estimates can reweight outcomes.
   */
  readonly propensity: number
}

/** How `rank()` explores. `slots`: how many top positions exploration may fill. */
export type ExplorationConfig =
  | { readonly method: 'none' }
  | { readonly method: 'epsilon-greedy'; readonly epsilon: number; readonly slots?: number }
  | {
      readonly method: 'thompson'
      /** Multiplies the posterior's spread; 1 is the Laplace posterior itself. */
      readonly scale?: number
      /** Monte Carlo draws that estimate the logged propensities. */
      readonly samples?: number
      readonly slots?: number
    }

export const DEFAULT_EXPLORATION: ExplorationConfig = { method: 'epsilon-greedy', epsilon: 0.05, slots: 10 }
export const DEFAULT_EXPLORATION_SLOTS = 10
export const DEFAULT_THOMPSON_SAMPLES = 200

/** Per-call options of `rank()`. */
export interface RankOptions {
  /** Overrides the configured exploration for this call (`{ method: 'none' }`: greedy). */
  readonly exploration?: ExplorationConfig
  /** Keep a record of this decision (default true). */
  readonly log?: boolean
}

/** What `rank()` returns. */
export interface RankResult {
  /** Id of the logged decision, or null when nothing was logged. */
  readonly decision: string | null
  readonly modelVersion: number | null
  readonly exploration: ExplorationConfig['method']
  readonly items: readonly RankedItem[]
}

/** A `similar` reason without its per-item `similarity`. */
export type SimilarReasonTemplate = Omit<Extract<Reason, { readonly kind: 'similar' }>, 'similarity'>

/** One row of the reason table of `RankColumns`: a reason, `similar` ones without their similarity. */
export type ReasonTemplate = Exclude<Reason, { readonly kind: 'similar' }> | SimilarReasonTemplate

/**
 * A ranking as the worker posts it to the page: by position, typed arrays instead of one object
 * per item, so that the reply is a few transferred buffers and a small table rather than the
 * structured clone of n objects (bench/RESULTS.md, Ranking). `unpackRanking` gives the
 * `RankResult` apps see.
 *
 * Reasons are a table of distinct ones (`reasonTable`: popular, exploring, one `similar` per
 * engaged item named, app-order) and, by position, a row of that table (`reasons`) and, for
 * `similar`, the cosine similarity in thousandths (`similarity`): `Reason.similarity` is rounded
 * to 0.001, so `similarity[p] / 1000` is that very number.
 */
export interface RankColumns {
  readonly decision: string | null
  readonly modelVersion: number | null
  readonly exploration: ExplorationConfig['method']
  /** `order[position]`: index into the candidates as given to `rank()`. */
  readonly order: Int32Array
  /** The model's scores (float32, as computed), by position. */
  readonly scores: Float32Array
  /** By position (see `RankedItem.propensity`). */
  readonly propensities: Float64Array
  readonly reasonTable: readonly ReasonTemplate[]
  /** Row of `reasonTable`, by position. 16 bits suffice: a table never has more rows than MAX_CANDIDATES. */
  readonly reasons: Uint16Array
  /** Cosine similarity × 1000 of `similar` reasons (0 for the others), by position. */
  readonly similarity: Int16Array
}

/**
 * The buffers of `columns`, for `comlink.transfer`. Each column owns its whole buffer (none is
 * a view into a larger one), so transferring gives away nothing else; and each is a plain
 * `ArrayBuffer` the worker allocated, never shared memory. (Plain typed-array types here, not
 * `Int32Array<ArrayBuffer>`: this file is in the published declarations, and TypeScript before
 * 5.7 has no generic typed arrays.)
 */
export function rankColumnBuffers(columns: RankColumns): ArrayBuffer[] {
  const { order, scores, propensities, reasons, similarity } = columns
  return [order.buffer, scores.buffer, propensities.buffer, reasons.buffer, similarity.buffer] as ArrayBuffer[]
}

/** The reason at `position` of `columns`. Non-similar reasons are the table's own (shared) objects. */
export function reasonAt(columns: RankColumns, position: number): Reason {
  const template = columns.reasonTable[columns.reasons[position] as number] as ReasonTemplate
  if (template.kind !== 'similar') return template
  const { item, engagement, text } = template
  return { kind: 'similar', item, engagement, similarity: (columns.similarity[position] as number) / 1000, text }
}

/** The id of a candidate `rank()` accepted. */
export function candidateItem(candidate: RankCandidate): string {
  return typeof candidate === 'string' ? candidate : candidate.item
}

/**
 * The `RankResult` of `columns`; `candidates` are the ones given to `rank()`, in the same order
 * (the columns index them and carry no ids).
 */
export function unpackRanking(columns: RankColumns, candidates: readonly RankCandidate[]): RankResult {
  const n = columns.order.length
  const items = new Array<RankedItem>(n)
  for (let p = 0; p < n; p++) {
    items[p] = {
      item: candidateItem(candidates[columns.order[p] as number] as RankCandidate),
      score: columns.scores[p] as number,
      reason: reasonAt(columns, p),
      propensity: columns.propensities[p] as number,
    }
  }
  return { decision: columns.decision, modelVersion: columns.modelVersion, exploration: columns.exploration, items }
}

/** The app's order as columns: every item with score 0, propensity 1 and `reason`; not logged. */
export function appOrderColumns(count: number, reason: Reason, modelVersion: number | null): RankColumns {
  return {
    decision: null,
    modelVersion,
    exploration: 'none',
    order: Int32Array.from({ length: count }, (_, i) => i),
    scores: new Float32Array(count),
    propensities: new Float64Array(count).fill(1),
    reasonTable: [reason],
    reasons: new Uint16Array(count),
    similarity: new Int16Array(count),
  }
}

/** What happened after a decision: a later event on one of its items. */
export interface DecisionOutcome {
  readonly item: string
  readonly kind: EventKind
  readonly at: number
  /** 0-based position of the item in the decision's order. */
  readonly position: number
}

/** One ranking, as logged on the device (never sent anywhere). */
export interface DecisionRecord {
  readonly id: string
  readonly at: number
  readonly modelVersion: number | null
  readonly exploration: ExplorationConfig
  readonly context?: EventContext
  /** The candidates in the app's order. */
  readonly candidates: readonly LoggedCandidate[]
  /** The chosen order: `order[position]` is an index into `candidates`. */
  readonly order: readonly number[]
  /** Scores, by position. */
  readonly scores: readonly number[]
  /** Propensities, by position (see `RankedItem.propensity`). */
  readonly propensities: readonly number[]
  /** Reasons of the first `LOGGED_REASONS` positions. */
  readonly reasons: readonly Reason[]
  readonly outcomes: readonly DecisionOutcome[]
}

export const POPULAR_TEXT = 'Popular among all users'
export const EXPLORING_TEXT = 'New for you: shown to learn what you like'
export const NO_MODEL_TEXT = 'In the app’s order: no model yet'
export const PAUSED_TEXT = 'In the app’s order: personalization is paused'

/** The reason of every item when the app's order is kept. */
export function appOrderReason(why: 'no-model' | 'paused'): Reason {
  return { kind: 'app-order', why, text: why === 'paused' ? PAUSED_TEXT : NO_MODEL_TEXT }
}

/** Largest number of candidates one `rank()` call takes. */
export const MAX_CANDIDATES = 10_000
/** Reasons kept per logged decision (the positions an app can show). */
export const LOGGED_REASONS = 20
/** Outcomes kept per logged decision. */
export const MAX_OUTCOMES = 50

function invalid(detail: string): never {
  throw new HearthError('HEARTH_ERR_INVALID_ARGUMENT', detail)
}

/** Validates candidates; returns them as `{ item, features? }`, ids unique. */
export function toCandidates(value: unknown): LoggedCandidate[] {
  if (!Array.isArray(value)) invalid('candidates must be an array of item ids or { item, features } objects')
  if (value.length > MAX_CANDIDATES) invalid(`candidates may hold at most ${MAX_CANDIDATES} items, got ${value.length}`)
  const seen = new Set<string>()
  return value.map((entry: unknown, i) => {
    const where = `candidates[${i}]`
    let item: unknown = entry
    let features: ItemFeatures | undefined
    if (typeof entry === 'object' && entry !== null && !Array.isArray(entry)) {
      const record = entry as Record<string, unknown>
      item = record.item
      if (record.features !== undefined) features = toItemFeatures(record.features, `${where}.features`)
    }
    if (typeof item !== 'string' || item.length === 0 || item.length > MAX_ITEM_ID_LENGTH) {
      invalid(`${where} must be an item id (a string of 1 to ${MAX_ITEM_ID_LENGTH} characters) or { item, features }`)
    }
    if (seen.has(item)) invalid(`${where} repeats item ${JSON.stringify(item)}`)
    seen.add(item)
    return features === undefined ? { item } : { item, features }
  })
}

/** Validates an exploration configuration (the message names `where`). */
export function toExplorationConfig(value: unknown, where: string): ExplorationConfig {
  if (typeof value !== 'object' || value === null) invalid(`${where} must be an object like { method: 'epsilon-greedy', epsilon: 0.1 }`)
  const { method, epsilon, slots, scale, samples } = value as Record<string, unknown>
  const checkSlots = (): number | undefined => {
    if (slots === undefined) return undefined
    if (typeof slots !== 'number' || !Number.isInteger(slots) || slots < 1 || slots > MAX_CANDIDATES) invalid(`${where}.slots must be an integer in [1, ${MAX_CANDIDATES}]`)
    return slots
  }
  switch (method) {
    case 'none':
      return { method }
    case 'epsilon-greedy': {
      if (typeof epsilon !== 'number' || !(epsilon >= 0 && epsilon <= 1)) invalid(`${where}.epsilon must be a number in [0, 1]`)
      const s = checkSlots()
      return s === undefined ? { method, epsilon } : { method, epsilon, slots: s }
    }
    case 'thompson': {
      if (scale !== undefined && (typeof scale !== 'number' || !(scale > 0 && scale <= 100))) invalid(`${where}.scale must be a number in (0, 100]`)
      if (samples !== undefined && (typeof samples !== 'number' || !Number.isInteger(samples) || samples < 10 || samples > 10_000)) {
        invalid(`${where}.samples must be an integer in [10, 10000]`)
      }
      const s = checkSlots()
      return {
        method,
        ...(scale === undefined ? {} : { scale: scale as number }),
        ...(samples === undefined ? {} : { samples: samples as number }),
        ...(s === undefined ? {} : { slots: s }),
      }
    }
    default:
      return invalid(`${where}.method must be none, epsilon-greedy or thompson, got ${String(method)}`)
  }
}
