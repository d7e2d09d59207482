/**
 * The tfjs side of `rank()`: one pass over the candidates computes, in one `tf.tidy`,
 *
 * - the item side t(i), p(i) of every candidate (the only per-call work that grows with n);
 * - score(i) = ⟨v_user, t(i)⟩ + p(i), and its personal part;
 * - the nearest engaged item of each candidate: argmax_j cos(t(i), t(h_j)) over the user's
 *   engaged items h_j, a [n, d]·[d, H] product of unit vectors;
 * - with Thompson sampling, the scores under every posterior draw and their top slots.
 *
 * What does not depend on the candidates is cached until the serving model or the history
 * changes (`invalidate`): the unit item vectors of the engaged items and the posterior's
 * Cholesky factor. The user vector is a variable of the serving model, read in place.
 *
 * Every op here has a kernel on the wasm backend (GatherV2, ScatterNd only in training,
 * BatchMatMul, Tanh, Sum, Sqrt, RealDiv, ArgMax, Max, Transpose, TopK).
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
}

const EPSILON = 1e-12

export class Ranker {
  readonly #model: HearthModel
  #history: History | null = null
  /** Unit t of the engaged items, [H, d]; null until needed. */
  #engagedUnit: tf.Tensor2D | null = null
  #posterior: { readonly mean: Float32Array; readonly chol: Float64Array } | null = null

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
  }

  dispose(): void {
    this.invalidate()
    this.#history = null
  }

  /** Scores and explanations of `candidates`; personal only when `personal` (else the prior alone). */
  async compute(candidates: EncodedItems, personal: boolean, draws?: DrawRequest): Promise<RankComputation> {
    const model = this.#model
    const engaged = personal ? this.#engagedVectors() : null
    const drawMatrix = personal && draws !== undefined ? await this.#draws(draws) : null
    const out = tf.tidy(() => {
      const side = model.itemSide(itemTensors(candidates))
      if (!personal) return { scores: side.prior }
      const affinities = affinity(side.vectors, model.userVector())
      const result: Record<string, tf.Tensor> = { scores: tf.add(affinities, side.prior), personal: affinities, prior: side.prior }
      if (engaged !== null) {
        const norms = tf.add(tf.sqrt(tf.sum(tf.square(side.vectors), 1, true)), EPSILON)
        const similarities = tf.matMul(tf.div(side.vectors, norms), engaged, false, true) // [n, H]
        result.nearest = tf.argMax(similarities, 1)
        result.similarity = tf.max(similarities, 1)
      }
      if (drawMatrix !== null && draws !== undefined) {
        const sampled = tf.add(tf.matMul(side.vectors, tf.tensor2d(drawMatrix, [model.dim, draws.draws])), tf.expandDims(side.prior, 1)) // [n, M]
        result.top = tf.topk(tf.transpose(sampled), Math.min(draws.top, candidates.count)).indices
      }
      return result
    })
    try {
      const read = async (name: string): Promise<tf.TypedArray | null> => {
        const t = (out as Record<string, tf.Tensor | undefined>)[name]
        return t === undefined ? null : await t.data()
      }
      const scores = (await read('scores')) as Float32Array
      const top = (await read('top')) as Int32Array | null
      const width = draws === undefined ? 0 : Math.min(draws.top, candidates.count)
      return {
        scores,
        prior: personal ? ((await read('prior')) as Float32Array) : scores,
        personal: (await read('personal')) as Float32Array | null,
        nearest: (await read('nearest')) as Int32Array | null,
        similarity: (await read('similarity')) as Float32Array | null,
        topByDraw: top === null ? null : Array.from({ length: top.length / width }, (_, m) => top.subarray(m * width, (m + 1) * width)),
      }
    } finally {
      tf.dispose(Object.values(out))
    }
  }

  /** Unit vectors of the engaged items, cached; null when the user engaged with nothing. */
  #engagedVectors(): tf.Tensor2D | null {
    const history = this.#history
    if (history === null || history.engagedRows.length === 0) return null
    if (this.#engagedUnit === null) {
      this.#engagedUnit = tf.tidy(() => {
        const { vectors } = this.#model.itemSide(itemTensors(history.items))
        const rows = tf.gather(vectors, tf.tensor1d(history.engagedRows, 'int32'))
        return tf.div(rows, tf.add(tf.sqrt(tf.sum(tf.square(rows), 1, true)), EPSILON)) as tf.Tensor2D
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
