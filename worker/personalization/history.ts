/**
 * The user's history as ranking sees it: the items the user's events label (engaged or
 * rejected, by the summed event weights of `model/examples.ts`), most recent first, with the
 * strongest way the user engaged with each, for reasons ("because you liked X").
 */
import { EVENT_WEIGHTS } from '../../protocol/events.ts'
import type { EventKind, InteractionEvent } from '../../protocol/events.ts'
import type { ItemFeatures } from '../../protocol/features.ts'
import { MAX_EXAMPLE_WEIGHT } from '../model/examples.ts'
import { encodeItems } from '../model/item-encoding.ts'
import type { ItemEncoding, ItemRef } from '../model/item-encoding.ts'
import type { History } from '../rank/ranker.ts'

/** Most labelled items a history holds. */
export const MAX_HISTORY = 500

interface Entry {
  sum: number
  last: number
  strongest: EventKind | null
  features: ItemFeatures | undefined
  featuresAt: number
}

/** The history of `events` (any order), encoded with `encoding`. */
export function buildHistory(events: readonly InteractionEvent[], encoding: ItemEncoding, limit = MAX_HISTORY): History {
  const byItem = new Map<string, Entry>()
  for (const { item, kind, at, features } of events) {
    let entry = byItem.get(item)
    if (entry === undefined) byItem.set(item, (entry = { sum: 0, last: at, strongest: null, features: undefined, featuresAt: -Infinity }))
    const weight = EVENT_WEIGHTS[kind]
    entry.sum += weight
    entry.last = Math.max(entry.last, at)
    if (weight > 0 && (entry.strongest === null || weight > EVENT_WEIGHTS[entry.strongest])) entry.strongest = kind
    if (features !== undefined && at >= entry.featuresAt) {
      entry.features = features
      entry.featuresAt = at
    }
  }
  const kept = [...byItem]
    .filter(([, e]) => e.sum !== 0)
    .sort(([, a], [, b]) => b.last - a.last)
    .slice(0, limit)
  const refs: ItemRef[] = kept.map(([item, e]) => (e.features === undefined ? { item } : { item, features: e.features }))
  const engagedRows: number[] = []
  const engaged: { item: string; engagement: EventKind }[] = []
  kept.forEach(([item, e], row) => {
    if (e.sum > 0 && e.strongest !== null) {
      engagedRows.push(row)
      engaged.push({ item, engagement: e.strongest })
    }
  })
  return {
    items: encodeItems(refs, encoding),
    labels: Float32Array.from(kept, ([, e]) => (e.sum > 0 ? 1 : 0)),
    weights: Float32Array.from(kept, ([, e]) => Math.min(Math.abs(e.sum), MAX_EXAMPLE_WEIGHT)),
    engagedRows: Int32Array.from(engagedRows),
    engaged,
  }
}
