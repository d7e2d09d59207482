/**
 * From stored events to training rows for the weighted logistic loss of `mf-model.ts`.
 *
 * - Events of one item add up (`EVENT_WEIGHTS`): three views and a like say more than a view,
 *   and a later dislike cancels an earlier view. The sum's sign gives the label (1 engaged,
 *   0 rejected), its magnitude the example weight, capped at `MAX_EXAMPLE_WEIGHT` so that an
 *   item viewed a hundred times does not drown out everything else. A sum of 0 says nothing.
 * - Sampled negatives (implicit feedback): each positive brings `negativesPerPositive` buckets
 *   drawn uniformly, labelled 0, each weighted like the positive, as in NCF (He et al., WWW
 *   2017, §4.1: 4 negatives per positive; 3–6 worked best). Buckets of the user's own positives
 *   are never drawn as negatives.
 */
import { EVENT_WEIGHTS } from '../../protocol/events.ts'
import type { InteractionEvent } from '../../protocol/events.ts'
import type { UniformSource } from '../../protocol/model-spec.ts'
import { itemBucket } from './hash.ts'
import { randomInt } from './random.ts'

/** Largest weight one item's events can add up to. */
export const MAX_EXAMPLE_WEIGHT = 2

/** One labelled item of the user's own data. */
export interface Example {
  readonly bucket: number
  readonly label: 0 | 1
  readonly weight: number
}

/** Rows of one optimizer step, ready to become tensors. */
export interface Batch {
  readonly buckets: Int32Array
  readonly labels: Float32Array
  readonly weights: Float32Array
  /** Sum of `weights`, the loss's normalizer. */
  readonly weightSum: number
}

/**
 * The user's examples, most recently touched item first, at most `maxExamples` of them.
 * `events` may come in any order.
 */
export function eventsToExamples(events: readonly InteractionEvent[], buckets: number, maxExamples: number): Example[] {
  const byItem = new Map<string, { sum: number; last: number }>()
  for (const { item, kind, at } of events) {
    const entry = byItem.get(item)
    const weight = EVENT_WEIGHTS[kind]
    if (entry === undefined) byItem.set(item, { sum: weight, last: at })
    else {
      entry.sum += weight
      entry.last = Math.max(entry.last, at)
    }
  }
  const rows = [...byItem]
    .filter(([, { sum }]) => sum !== 0)
    .sort(([, a], [, b]) => b.last - a.last)
    .slice(0, maxExamples)
  return rows.map(([item, { sum }]) => ({
    bucket: itemBucket(item, buckets),
    label: sum > 0 ? 1 : 0,
    weight: Math.min(Math.abs(sum), MAX_EXAMPLE_WEIGHT),
  }))
}

/** Draws negative buckets uniformly, skipping the user's positives. */
export class NegativeSampler {
  readonly #buckets: number
  readonly #positives: ReadonlySet<number>
  readonly #uniform: UniformSource
  readonly perPositive: number

  constructor(buckets: number, perPositive: number, examples: readonly Example[], uniform: UniformSource) {
    this.#buckets = buckets
    this.perPositive = perPositive
    this.#positives = new Set(examples.filter((e) => e.label === 1).map((e) => e.bucket))
    this.#uniform = uniform
  }

  /** One bucket that is not a positive of this user (when one exists). */
  sample(): number {
    // Rejection sampling; bounded because a user may, in a tiny model, like every bucket.
    let bucket = randomInt(this.#uniform, this.#buckets)
    for (let tries = 0; tries < 16 && this.#positives.has(bucket); tries++) bucket = randomInt(this.#uniform, this.#buckets)
    return bucket
  }
}

/** The rows of `examples` plus the sampled negatives of its positives. */
export function makeBatch(examples: readonly Example[], sampler: NegativeSampler): Batch {
  const positives = examples.reduce((n, e) => n + e.label, 0)
  const size = examples.length + positives * sampler.perPositive
  const buckets = new Int32Array(size)
  const labels = new Float32Array(size)
  const weights = new Float32Array(size)
  let row = 0
  let weightSum = 0
  for (const example of examples) {
    buckets[row] = example.bucket
    labels[row] = example.label
    weights[row] = example.weight
    weightSum += example.weight
    row++
    if (example.label === 0) continue
    for (let k = 0; k < sampler.perPositive; k++) {
      buckets[row] = sampler.sample()
      weights[row] = example.weight
      weightSum += example.weight
      row++
    }
  }
  return { buckets, labels, weights, weightSum }
}
