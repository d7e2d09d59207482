/**
 * Training on the id-table rows a device can reach. In `hearth-mf-v1` the item id tables
 * (`item_embedding`, `item_bias`) are read only through the buckets of a batch's items, and a
 * device's batches hold only its own items and negatives drawn from its pool of seen items. Every
 * other row gets a zero gradient at every step, and a fresh SGD or Adam optimizer leaves a row
 * that never had a gradient exactly where it was. So a copy of the model whose id tables hold
 * just the reachable rows, trained on the same data re-indexed to those rows, ends with the very
 * weights full training would: written back into the full vector, the two agree row for row.
 *
 * What it saves: each optimizer step works on the reachable rows (a few thousand) instead of all
 * `buckets` rows, and Adam keeps its two moments for those rows only (at 65,536 × 32 buckets a
 * full step updates 2M floats three times over, and the moments hold 16 MB).
 *
 * Not when negatives may be drawn as bare uniform buckets (a device that has seen fewer than
 * `MIN_NEGATIVE_POOL` items, see examples.ts): those can land on any row, so such a device
 * trains the full tables.
 */
import { federatedLayout, mfSpec } from '../../protocol/model-spec.ts'
import type { TensorSlice } from '../../protocol/model-spec.ts'
import { MIN_NEGATIVE_POOL } from './examples.ts'
import type { TrainingData } from './examples.ts'
import { MfModel } from './mf-model.ts'

/** The tensors indexed by item id bucket, one row per bucket. */
export const ID_TABLES: ReadonlySet<string> = new Set(['item_embedding', 'item_bias'])

/** A model cut down to the rows of one device's data, and that data re-indexed to match. */
export interface RowSubset {
  /** The model with one row per reachable bucket in each id table, holding the full model's values. */
  readonly model: MfModel
  readonly data: TrainingData
  /** `full` with the subset model's federated weights `subset` written over their rows. */
  expand(subset: Float32Array, full: Float32Array): Float32Array
}

/** True when every negative of `data` comes from its pool, so its rows are known in advance. */
export function negativesFromPool(data: TrainingData): boolean {
  return data.negativeRows.length >= MIN_NEGATIVE_POOL
}

/**
 * The rows `data` can reach in `model` and a model of those rows loaded from the federated
 * weights `weights` and the model's current local values. Null when a subset would not be exact
 * (see the module comment). Call `subset.model.dispose()` when done.
 */
export async function rowSubset(model: MfModel, weights: Float32Array, data: TrainingData): Promise<RowSubset | null> {
  if (!negativesFromPool(data)) return null
  const rows = Int32Array.from(new Set(data.items.buckets)).sort()
  const index = new Map<number, number>()
  rows.forEach((bucket, i) => index.set(bucket, i))
  const spec = mfSpec(model.spec.name, { ...model.spec.options, buckets: rows.length })
  // The initial values are overwritten at once: draw them without touching the caller's stream.
  const subset = MfModel.create(spec, () => 0.5)
  const full: Layout = { slices: federatedLayout(model.spec), row: (i) => rows[i] as number }
  const cut: Layout = { slices: federatedLayout(spec), row: (i) => i }
  const values = new Float32Array(subset.federatedLength)
  copyWeights(weights, full, values, cut, rows.length)
  subset.setFederated(values)
  subset.setLocal(await model.readLocal())
  const items = { ...data.items, buckets: data.items.buckets.map((bucket) => index.get(bucket) as number) }
  return {
    model: subset,
    data: { ...data, items },
    expand(trained, into) {
      const out = into.slice()
      copyWeights(trained, cut, out, full, rows.length)
      return out
    },
  }
}

/** A federated vector's tensors, and where subset row i of the id tables sits in them. */
interface Layout {
  readonly slices: readonly TensorSlice[]
  readonly row: (i: number) => number
}

/**
 * Copies `source` into `target` tensor by tensor (both layouts list the same tensors in the
 * same order): whole, except the id tables, of which only the `count` subset rows move.
 */
function copyWeights(source: Float32Array, from: Layout, target: Float32Array, to: Layout, count: number): void {
  from.slices.forEach((slice, t) => {
    const at = (to.slices[t] as TensorSlice).offset
    if (!ID_TABLES.has(slice.tensor.name)) return target.set(source.subarray(slice.offset, slice.offset + slice.size), at)
    const width = slice.tensor.shape.slice(1).reduce((a, b) => a * b, 1)
    for (let i = 0; i < count; i++) {
      const start = slice.offset + from.row(i) * width
      target.set(source.subarray(start, start + width), at + to.row(i) * width)
    }
  })
}
