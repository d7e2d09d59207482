/**
 * Shared pieces of the worker tests: a small spec, items with distinct buckets, a plain
 * JavaScript reference of `hearth-mf-v1` scoring to check the tfjs model against, and a store
 * that runs out of space.
 */
import type { InteractionEvent } from '../../protocol/events.ts'
import { federatedLayout, mfSpec } from '../../protocol/model-spec.ts'
import type { ModelSpec } from '../../protocol/model-spec.ts'
import type { PersonalizationSettings } from '../../protocol/personal-data.ts'
import type { DecisionRecord } from '../../protocol/ranking.ts'
import type { RoundParticipation } from '../../worker/api.ts'
import type { TrainingData } from '../../worker/model/examples.ts'
import { scoreItems } from '../../worker/model/hearth-model.ts'
import type { HearthModel } from '../../worker/model/hearth-model.ts'
import { itemBucket } from '../../worker/model/hash.ts'
import type { EncodedItems } from '../../worker/model/item-encoding.ts'
import type { DeviceStore, EventSummary, MetaKey, StoredGlobal, StoredLocal } from '../../worker/store/device-store.ts'

/** Small enough for two shared cores: 256 buckets of width 8. */
export const SMALL_SPEC: ModelSpec = mfSpec('test', { buckets: 256, dim: 8 })

/** `count` ids per prefix, no two of all of them in the same bucket. */
export function distinctItems(prefixes: readonly string[], count: number, buckets: number): string[][] {
  const used = new Set<number>()
  const lists = prefixes.map(() => [] as string[])
  for (let i = 0; lists.some((l) => l.length < count); i++) {
    prefixes.forEach((prefix, p) => {
      const list = lists[p] as string[]
      if (list.length >= count) return
      const id = `${prefix}-${i}`
      const bucket = itemBucket(id, buckets)
      if (used.has(bucket)) return
      used.add(bucket)
      list.push(id)
    })
  }
  return lists
}

/**
 * score(u, i) = u · tanh(E[h(i)] W + b) + β[h(i)], in float64 from the flat federated vector
 * (spec order, row-major) and the user vector.
 */
export function referenceScores(spec: ModelSpec, federated: Float32Array, user: Float32Array, items: readonly string[]): number[] {
  const { buckets, dim } = spec.options
  const at = Object.fromEntries(federatedLayout(spec).map((s) => [s.tensor.name, s.offset]))
  const [E, beta, W, b] = ['item_embedding', 'item_bias', 'tower_kernel', 'tower_bias'].map((name) => at[name] as number) as [number, number, number, number]
  return items.map((item) => {
    const h = itemBucket(item, buckets)
    let score = federated[beta + h] as number
    for (let c = 0; c < dim; c++) {
      let z = federated[b + c] as number
      for (let r = 0; r < dim; r++) z += (federated[E + h * dim + r] as number) * (federated[W + r * dim + c] as number)
      score += (user[c] as number) * Math.tanh(z)
    }
    return score
  })
}

/** Items given by id bucket alone (no features). */
export function bucketItems(buckets: ArrayLike<number>): EncodedItems {
  return { count: buckets.length, buckets: Int32Array.from(buckets), tokens: new Int32Array(0), tokenWeights: new Float32Array(0), numeric: new Float32Array(0) }
}

/** A labelled bucket, as tests write examples. */
export interface BucketExample {
  readonly bucket: number
  readonly label: 0 | 1
  readonly weight: number
}

/** Training data over bare buckets: one row per example, no seen items (negatives are uniform buckets). */
export function bucketData(examples: readonly BucketExample[]): TrainingData {
  return {
    items: bucketItems(examples.map((e) => e.bucket)),
    examples: examples.map((e, row) => ({ row, label: e.label, weight: e.weight })),
    negativeRows: new Int32Array(0),
    ids: examples.map((e) => `bucket-${e.bucket}`),
  }
}

/** Scores of bare buckets for the model's user. */
export function scoreBuckets(model: HearthModel, buckets: ArrayLike<number>): Promise<Float32Array> {
  return scoreItems(model, bucketItems(buckets))
}

/** t(i) = tanh(E[h(i)] W + b) and p(i) = β[h(i)] in float64 (no features), per item. */
export function referenceItemSide(spec: ModelSpec, federated: Float32Array, items: readonly string[]): { vectors: number[][]; prior: number[] } {
  const { buckets, dim } = spec.options
  const at = Object.fromEntries(federatedLayout(spec).map((s) => [s.tensor.name, s.offset]))
  const [E, beta, W, b] = ['item_embedding', 'item_bias', 'tower_kernel', 'tower_bias'].map((name) => at[name] as number) as [number, number, number, number]
  const vectors: number[][] = []
  const prior: number[] = []
  for (const item of items) {
    const h = itemBucket(item, buckets)
    prior.push(federated[beta + h] as number)
    const t: number[] = []
    for (let c = 0; c < dim; c++) {
      let z = federated[b + c] as number
      for (let r = 0; r < dim; r++) z += (federated[E + h * dim + r] as number) * (federated[W + r * dim + c] as number)
      t.push(Math.tanh(z))
    }
    vectors.push(t)
  }
  return { vectors, prior }
}

/** Cosine similarity of two vectors. */
export function cosine(a: readonly number[], b: readonly number[]): number {
  let ab = 0
  let aa = 0
  let bb = 0
  a.forEach((x, i) => {
    const y = b[i] as number
    ab += x * y
    aa += x * x
    bb += y * y
  })
  return ab / Math.sqrt(aa * bb)
}

/** Deterministic uniform numbers for test data (mulberry32, as the worker uses). */
export { seededUniform } from '../../worker/model/random.ts'

/**
 * A store that runs out of space after `capacity` events, as a browser would: the write throws
 * a `DOMException` named `QuotaExceededError`. Everything else goes to the wrapped store.
 */
export class FullDisk implements DeviceStore {
  failNextModelWrite = false

  constructor(
    readonly inner: DeviceStore,
    public capacity: number,
  ) {}

  async appendEvents(events: readonly InteractionEvent[]): Promise<void> {
    const { count } = await this.inner.summarizeEvents()
    if (count + events.length > this.capacity) throw new DOMException('The quota has been exceeded.', 'QuotaExceededError')
    return this.inner.appendEvents(events)
  }
  async saveGlobal(model: StoredGlobal): Promise<void> {
    if (this.failNextModelWrite) {
      this.failNextModelWrite = false
      throw new DOMException('The quota has been exceeded.', 'QuotaExceededError')
    }
    return this.inner.saveGlobal(model)
  }
  recentEvents = (limit: number): Promise<InteractionEvent[]> => this.inner.recentEvents(limit)
  summarizeEvents = (): Promise<EventSummary> => this.inner.summarizeEvents()
  dropOldestEvents = (count: number): Promise<number> => this.inner.dropOldestEvents(count)
  loadGlobal = (): Promise<StoredGlobal | null> => this.inner.loadGlobal()
  loadLocal = (): Promise<StoredLocal | null> => this.inner.loadLocal()
  saveLocal = (model: StoredLocal): Promise<void> => this.inner.saveLocal(model)
  getMeta = (key: MetaKey): Promise<number | null> => this.inner.getMeta(key)
  setMeta = (key: MetaKey, value: number): Promise<void> => this.inner.setMeta(key, value)
  addRound = (entry: RoundParticipation): Promise<void> => this.inner.addRound(entry)
  countRounds = (): Promise<number> => this.inner.countRounds()
  listRounds = (): Promise<RoundParticipation[]> => this.inner.listRounds()
  countEvents = (): Promise<number> => this.inner.countEvents()
  expireEvents = (before: number): Promise<number> => this.inner.expireEvents(before)
  redactEventFeatures = (names: readonly string[]): Promise<number> => this.inner.redactEventFeatures(names)
  putDecision = (decision: DecisionRecord): Promise<void> => this.inner.putDecision(decision)
  recentDecisions = (limit: number): Promise<DecisionRecord[]> => this.inner.recentDecisions(limit)
  countDecisions = (): Promise<number> => this.inner.countDecisions()
  pruneDecisions = (before: number, keep: number): Promise<number> => this.inner.pruneDecisions(before, keep)
  loadSettings = (): Promise<PersonalizationSettings | null> => this.inner.loadSettings()
  saveSettings = (settings: PersonalizationSettings): Promise<void> => this.inner.saveSettings(settings)
  clear = (): Promise<void> => this.inner.clear()
  close = (): Promise<void> => this.inner.close()
}

