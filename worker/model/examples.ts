/**
 * From stored events to training rows for the weighted logistic loss of `hearth-model.ts`.
 *
 * - Events of one item add up (`EVENT_WEIGHTS`: view < click < like < purchase; dismiss and
 *   dislike negative): three views and a like say more than a view, and a later dislike cancels
 *   an earlier view. The sum's sign gives the label (1 engaged, 0 rejected), its magnitude the
 *   example weight, capped at `MAX_EXAMPLE_WEIGHT` so that an item viewed a hundred times does
 *   not drown out everything else. A sum of 0 says nothing.
 * - Sampled negatives (implicit feedback): each positive brings `negativesPerPositive` items,
 *   labelled 0 and weighted like the positive, as in NCF (He et al., WWW 2017, §4.1: 4 negatives
 *   per positive; 3–6 worked best). They are drawn from the items the device has seen (the
 *   candidates the app asked it to rank) that the user has no example of: real items, with
 *   their features. While the device has seen few items, some draws are uniform id buckets
 *   instead (`MIN_NEGATIVE_POOL`).
 */
import { EVENT_WEIGHTS } from '../../protocol/events.ts'
import type { InteractionEvent } from '../../protocol/events.ts'
import type { ItemFeatures } from '../../protocol/features.ts'
import type { UniformSource } from '../../protocol/model-spec.ts'
import { encodeItems } from './item-encoding.ts'
import type { EncodedItems, ItemEncoding, ItemRef } from './item-encoding.ts'
import { randomInt } from './random.ts'

/** Largest weight one item's events can add up to. */
export const MAX_EXAMPLE_WEIGHT = 2
/** Below this many seen items, negatives are partly uniform buckets (pool size / this of them from the pool). */
export const MIN_NEGATIVE_POOL = 50
/** Most seen items kept as negative candidates. */
export const MAX_NEGATIVE_POOL = 5_000

/** One labelled item of the user's own data: a row of `TrainingData.items`. */
export interface Example {
  readonly row: number
  readonly label: 0 | 1
  readonly weight: number
}

/** What one training call works on. */
export interface TrainingData {
  /** The user's items (rows `0..examples.length-1`, in example order), then seen-only items. */
  readonly items: EncodedItems
  /** Most recently touched item first. */
  readonly examples: readonly Example[]
  /** Rows negatives are drawn from: seen items the user has no example of. */
  readonly negativeRows: Int32Array
  /** Ids of the example rows, in row order (for reasons and history). */
  readonly ids: readonly string[]
}

/** Rows of one optimizer step, ready to become tensors. */
export interface Batch {
  readonly items: EncodedItems
  readonly labels: Float32Array
  readonly weights: Float32Array
  /** Sum of `weights`, the loss's normalizer. */
  readonly weightSum: number
}

/** Per item: summed event weight, last time, latest features. */
interface ItemSummary {
  sum: number
  last: number
  featuresAt: number
  features: ItemFeatures | undefined
}

function summarize(events: readonly InteractionEvent[]): Map<string, ItemSummary> {
  const byItem = new Map<string, ItemSummary>()
  for (const { item, kind, at, features } of events) {
    let entry = byItem.get(item)
    if (entry === undefined) byItem.set(item, (entry = { sum: 0, last: at, featuresAt: -Infinity, features: undefined }))
    entry.sum += EVENT_WEIGHTS[kind]
    entry.last = Math.max(entry.last, at)
    if (features !== undefined && at >= entry.featuresAt) {
      entry.features = features
      entry.featuresAt = at
    }
  }
  return byItem
}

/**
 * The user's training data: at most `maxExamples` items, most recently touched first, and the
 * negative pool: the items of `seen` the user has no example of. `events` and `seen` may come in
 * any order.
 */
export function buildTrainingData(events: readonly InteractionEvent[], seen: readonly ItemRef[], encoding: ItemEncoding, maxExamples: number): TrainingData {
  const byItem = summarize(events)
  const kept = [...byItem]
    .filter(([, { sum }]) => sum !== 0)
    .sort(([, a], [, b]) => b.last - a.last)
    .slice(0, maxExamples)
  const refs: ItemRef[] = kept.map(([item, { features }]) => (features === undefined ? { item } : { item, features }))
  const examples: Example[] = kept.map(([, { sum }], row) => ({ row, label: sum > 0 ? 1 : 0, weight: Math.min(Math.abs(sum), MAX_EXAMPLE_WEIGHT) }))
  // The user's own rejected items are examples already; drawing them again as negatives would
  // count them twice.
  const pool: number[] = []
  const listed = new Set(kept.map(([item]) => item))
  for (const ref of seen) {
    if (pool.length >= MAX_NEGATIVE_POOL) break
    if (listed.has(ref.item)) continue
    listed.add(ref.item)
    pool.push(refs.length)
    refs.push(ref)
  }
  const items = encodeItems(refs, encoding)
  // A seen item hashed into a positive's bucket would push that positive down: leave it out.
  const positiveBuckets = new Set(examples.filter((e) => e.label === 1).map((e) => items.buckets[e.row] as number))
  const negativeRows = Int32Array.from(pool.filter((row) => !positiveBuckets.has(items.buckets[row] as number)))
  return { items, examples, negativeRows, ids: kept.map(([item]) => item) }
}

/** A drawn negative: a row of the training data, or a bare id bucket. */
export type Negative = { readonly row: number } | { readonly bucket: number }

/** Draws negatives: seen items mostly, uniform buckets while the device has seen few (see above). */
export class NegativeSampler {
  readonly #data: TrainingData
  readonly #buckets: number
  readonly #positives: ReadonlySet<number>
  readonly #uniform: UniformSource
  readonly #poolShare: number
  readonly perPositive: number

  constructor(data: TrainingData, buckets: number, perPositive: number, uniform: UniformSource) {
    this.#data = data
    this.#buckets = buckets
    this.perPositive = perPositive
    this.#positives = new Set(data.examples.filter((e) => e.label === 1).map((e) => data.items.buckets[e.row] as number))
    this.#uniform = uniform
    this.#poolShare = Math.min(1, data.negativeRows.length / MIN_NEGATIVE_POOL)
  }

  sample(): Negative {
    const pool = this.#data.negativeRows
    if (pool.length > 0 && this.#uniform() < this.#poolShare) return { row: pool[randomInt(this.#uniform, pool.length)] as number }
    // Rejection sampling; bounded because a user may, in a tiny model, like every bucket.
    let bucket = randomInt(this.#uniform, this.#buckets)
    for (let tries = 0; tries < 16 && this.#positives.has(bucket); tries++) bucket = randomInt(this.#uniform, this.#buckets)
    return { bucket }
  }
}

/** The rows of `examples` plus the sampled negatives of its positives. */
export function makeBatch(data: TrainingData, examples: readonly Example[], sampler: NegativeSampler): Batch {
  const { items } = data
  const K = items.count === 0 ? 0 : items.tokens.length / items.count
  const N = items.count === 0 ? 0 : items.numeric.length / items.count
  const positives = examples.reduce((n, e) => n + e.label, 0)
  const size = examples.length + positives * sampler.perPositive
  const out = {
    count: size,
    buckets: new Int32Array(size),
    tokens: new Int32Array(size * K),
    tokenWeights: new Float32Array(size * K),
    numeric: new Float32Array(size * N),
  }
  const labels = new Float32Array(size)
  const weights = new Float32Array(size)
  let at = 0
  let weightSum = 0
  const put = (source: Negative, label: 0 | 1, weight: number): void => {
    if ('bucket' in source) out.buckets[at] = source.bucket
    else {
      const r = source.row
      out.buckets[at] = items.buckets[r] as number
      if (K > 0) {
        out.tokens.set(items.tokens.subarray(r * K, r * K + K), at * K)
        out.tokenWeights.set(items.tokenWeights.subarray(r * K, r * K + K), at * K)
      }
      if (N > 0) out.numeric.set(items.numeric.subarray(r * N, r * N + N), at * N)
    }
    labels[at] = label
    weights[at] = weight
    weightSum += weight
    at++
  }
  for (const example of examples) {
    put({ row: example.row }, example.label, example.weight)
    if (example.label === 0) continue
    for (let k = 0; k < sampler.perPositive; k++) put(sampler.sample(), 0, example.weight)
  }
  return { items: out, labels, weights, weightSum }
}
