/**
 * The tfjs side of `rank()`: one pass over the candidates computes, in one `tf.tidy`,
 *
 * - the item side t(i), p(i) of every candidate (the only per-call work that grows with n);
 * - score(i) = ⟨v_user, t(i)⟩ + p(i), and its personal part;
 * - the nearest engaged item of each candidate: argmax_j cos(t(i), t(h_j)) over the user's
 *   engaged items h_j, a [n, d]·[d, H] product of unit vectors;
 * - with Thompson sampling, the scores under every posterior draw and their top slots.
 *
 * The outputs leave tfjs as one tensor in one read: each `data()` is a backend round trip (and
 * on webgl a GPU sync), and five of them were a visible share of a 1,000-candidate ranking.
 *
 * Cached until the serving model or the history changes (`invalidate`): the unit item vectors
 * of the engaged items, the posterior's Cholesky factor, and the last computation without
 * draws (the same candidates ranked again give the same numbers). The user vector is a
 * variable of the serving model, read in place.
 *
 * Every op here has a kernel on the wasm backend (GatherV2, ScatterNd only in training,
 * BatchMatMul, Tanh, Sum, Sqrt, RealDiv, ArgMax, Max, Cast, Concat, Transpose, TopK).
 */
import * as tf from '../tf.ts'
import type { UniformSource } from '../../protocol/model-spec.ts'
import { affinity, itemTensors, USER_L2 } from '../model/hearth-model.ts'
import type { HearthModel } from '../model/hearth-model.ts'
import type { EncodedItems } from '../model/item-encoding.ts'
import { cholesky, drawUserVectors, laplacePrecision } from './posterior.ts'
import type { EngagedItem } from './reasons.ts'

/** The user's labelled items, for nearest-item reasons and the posterior. */
export interface History {
  /** Every labelled item (engaged and rejected), encoded. */
  readonly items: EncodedItems
  readonly labels: Float32Array
  readonly weights: Float32Array
  /** Rows of `items` the user engaged with, and what to call them in reasons (same order). */
  readonly engagedRows: Int32Array
  readonly engaged: readonly EngagedItem[]
}

/** Thompson sampling settings of one call. */
export interface DrawRequest {
  /** Draws in all, the one used first. */
  readonly draws: number
  readonly scale: number
  /** Top positions needed per draw. */
  readonly top: number
  readonly uniform: UniformSource
}

export interface RankComputation {
  readonly scores: Float32Array
  readonly prior: Float32Array
  /** Null when the ranking is not personal. */
  readonly personal: Float32Array | null
  readonly nearest: Int32Array | null
  readonly similarity: Float32Array | null
  /** Per draw, the `top` best candidate indices under that draw (draw 0 is the one used). */
  readonly topByDraw: Int32Array[] | null
  /** The engaged items `nearest` indexes: the history this was computed with. */
  readonly history: readonly EngagedItem[]
}

const EPSILON = 1e-12

function sameValues(a: Int32Array | Float32Array, b: Int32Array | Float32Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** The model reads nothing of an item but its encoding: equal encodings, equal outputs. */
function sameEncoding(a: EncodedItems, b: EncodedItems): boolean {
  return a === b || (a.count === b.count && sameValues(a.buckets, b.buckets) && sameValues(a.tokens, b.tokens) && sameValues(a.tokenWeights, b.tokenWeights) && sameValues(a.numeric, b.numeric))
}

export class Ranker {
  readonly #model: HearthModel
  #history: History | null = null
  /** Unit t of the engaged items, transposed: [d, H]; null until needed. */
  #engagedUnit: tf.Tensor2D | null = null
  #posterior: { readonly mean: Float32Array; readonly chol: Float64Array } | null = null
  /** The last computation without draws, and what it was computed for. */
  #last: { readonly candidates: EncodedItems; readonly personal: boolean; readonly result: RankComputation } | null = null
  /** Counts `invalidate` calls: a computation that awaited across one is not kept. */
  #epoch = 0

  /** `model` is the serving model: nothing trains it while it ranks. */
  constructor(model: HearthModel) {
    this.#model = model
  }

  /** The user's history changed (events recorded, consent changed, data deleted). */
  setHistory(history: History | null): void {
    this.#history = history
    this.invalidate()
  }

  get history(): History | null {
    return this.#history
  }

  /** The serving weights or the user vector changed: drop what was computed from them. */
  invalidate(): void {
    this.#engagedUnit?.dispose()
    this.#engagedUnit = null
    this.#posterior = null
    this.#last = null
    this.#epoch++
  }

  dispose(): void {
    this.invalidate()
    this.#history = null
  }

  /**
   * Scores and explanations of `candidates`; personal only when `personal` (else the prior alone).
   * Without draws the result is a function of the candidates' encoding, the serving model and
   * the history only: the last one is kept, and a repeated candidate set (a feed ranked again)
   * costs a comparison of its encoding. The arrays returned are shared with that cache: read only.
   */
  async compute(candidates: EncodedItems, personal: boolean, draws?: DrawRequest): Promise<RankComputation> {
    const last = this.#last
    if (draws === undefined && last !== null && last.personal === personal && sameEncoding(last.candidates, candidates)) return last.result
    const model = this.#model
    const n = candidates.count
    const drawMatrix = personal && draws !== undefined ? await this.#draws(draws) : null
    // After the only await before the tfjs pass: `invalidate` may dispose the cached tensor.
    const engaged = personal ? this.#engagedVectors() : null
    const history = this.#history?.engaged ?? []
    const epoch = this.#epoch
    const width = draws === undefined ? 0 : Math.min(draws.top, n)
    // Every output in one float32 tensor, read once: [scores | personal, prior | similarity,
    // nearest | top indices of each draw]. Indices are exact in float32 (below 2^24).
    const packed = tf.tidy(() => {
      const side = model.itemSide(itemTensors(candidates))
      if (!personal) return side.prior
      const affinities = affinity(side.vectors, model.userVector())
      const parts: tf.Tensor[] = [tf.add(affinities, side.prior), affinities, side.prior]
      if (engaged !== null) {
        const norms = tf.add(tf.sqrt(tf.sum(tf.square(side.vectors), 1, true)), EPSILON)
        const similarities = tf.matMul(tf.div(side.vectors, norms), engaged) // [n, H]
        parts.push(tf.max(similarities, 1), tf.cast(tf.argMax(similarities, 1), 'float32'))
      }
      if (drawMatrix !== null && draws !== undefined) {
        const sampled = tf.add(tf.matMul(side.vectors, tf.tensor2d(drawMatrix, [model.dim, draws.draws])), tf.expandDims(side.prior, 1)) // [n, M]
        parts.push(tf.reshape(tf.cast(tf.topk(tf.transpose(sampled), width).indices, 'float32'), [-1]))
      }
      return tf.concat(parts)
    })
    let values: Float32Array
    try {
      values = (await packed.data()) as Float32Array
    } finally {
      packed.dispose()
    }
    const column = (k: number): Float32Array => values.subarray(k * n, (k + 1) * n)
    const scores = column(0)
    const hasNearest = personal && engaged !== null
    const top = drawMatrix === null ? null : Int32Array.from(values.subarray((hasNearest ? 5 : 3) * n))
    const result: RankComputation = {
      scores,
      prior: personal ? column(2) : scores,
      personal: personal ? column(1) : null,
      similarity: hasNearest ? column(3) : null,
      nearest: hasNearest ? Int32Array.from(column(4)) : null,
      topByDraw: top === null || width === 0 ? null : Array.from({ length: top.length / width }, (_, m) => top.subarray(m * width, (m + 1) * width)),
      history,
    }
    if (draws === undefined && epoch === this.#epoch) this.#last = { candidates, personal, result }
    return result
  }

  /**
   * Unit vectors of the engaged items as columns ([d, H]), cached; null when the user engaged
   * with nothing. Transposed once here: the wasm backend's BatchMatMul with `transposeB` took
   * ~2 ms for [1000, 16]·[16, 100], the same product on a transposed operand ~0.1 ms.
   */
  #engagedVectors(): tf.Tensor2D | null {
    const history = this.#history
    if (history === null || history.engagedRows.length === 0) return null
    if (this.#engagedUnit === null) {
      this.#engagedUnit = tf.tidy(() => {
        const { vectors } = this.#model.itemSide(itemTensors(history.items))
        const rows = tf.gather(vectors, tf.tensor1d(history.engagedRows, 'int32'))
        return tf.transpose(tf.div(rows, tf.add(tf.sqrt(tf.sum(tf.square(rows), 1, true)), EPSILON))) as tf.Tensor2D
      })
    }
    return this.#engagedUnit
  }

  /** Posterior draws of the user vector, d × draws (see posterior.ts). */
  async #draws(request: DrawRequest): Promise<Float32Array> {
    if (this.#posterior === null) this.#posterior = await this.#laplace()
    return drawUserVectors(this.#posterior.mean, this.#posterior.chol, request.scale, request.draws, request.uniform)
  }

  async #laplace(): Promise<{ mean: Float32Array; chol: Float64Array }> {
    const model = this.#model
    const mean = (await model.userVector().data()).slice() as Float32Array
    const history = this.#history
    const [vectors, scores] = history === null || history.items.count === 0 ? [null, null] : tf.tidy(() => {
      const side = model.itemSide(itemTensors(history.items))
      return [side.vectors, tf.add(affinity(side.vectors, model.userVector()), side.prior)] as const
    })
    try {
      const weightSum = history === null ? 0 : history.weights.reduce((a, b) => a + b, 0)
      const precision = laplacePrecision(
        vectors === null ? new Float32Array(0) : ((await vectors.data()) as Float32Array),
        scores === null ? new Float32Array(0) : ((await scores.data()) as Float32Array),
        history?.weights ?? new Float32Array(0),
        model.dim,
        2 * USER_L2 * weightSum,
      )
      return { mean, chol: cholesky(precision, model.dim) }
    } finally {
      tf.dispose([vectors, scores].filter((t): t is tf.Tensor => t !== null))
    }
  }
}
