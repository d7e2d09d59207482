/**
 * The `hearth-mf-v1` model in TensorFlow.js, built from its `ModelSpec` (protocol/model-spec.ts):
 *
 *   score(u, i) = u · tanh(E[h(i)] W + b) + β[h(i)]
 *
 * with E = `item_embedding`, β = `item_bias`, W = `tower_kernel`, b = `tower_bias` (federated)
 * and u = `user_embedding` (local), h the item hash of `hash.ts`. One `tf.Variable` per tensor.
 *
 * Loss: the weighted logistic loss of `examples.ts` rows, normalized by the batch's weight sum,
 * plus an L2 penalty on u only. Nothing penalizes the item rows as a whole, so an optimizer step
 * leaves the rows of buckets absent from a batch exactly unchanged: a device's update touches
 * only the buckets it trained on.
 */
import * as tf from '../tf.ts'
import { HearthError } from '../../protocol/errors.ts'
import { assertFitsSpec, federatedLayout, initTensor, mfSpec, tensorSize } from '../../protocol/model-spec.ts'
import type { ModelSpec, TensorSlice, TensorSpec, UniformSource } from '../../protocol/model-spec.ts'
import type { Batch } from './examples.ts'
import { lookupRows } from './lookup.ts'

/** Weight of the L2 penalty `λ‖u‖²` on the user vector; keeps scores bounded for users with few events. */
export const USER_L2 = 1e-3

/**
 * Throws `HEARTH_ERR_MODEL_MISMATCH` unless `spec` is a `hearth-mf-v1` spec this worker can
 * build: the tensors of `mfSpec(name, options)`, same names, shapes, roles and order.
 */
export function assertMfSpec(spec: ModelSpec): void {
  const mismatch = (detail: string): never => {
    throw new HearthError('HEARTH_ERR_MODEL_MISMATCH', detail)
  }
  if (typeof spec !== 'object' || spec === null) mismatch('spec must be a model specification object')
  if (spec.architecture !== 'hearth-mf-v1') mismatch(`architecture ${String(spec.architecture)} is not supported by this worker`)
  let expected: ModelSpec
  try {
    expected = mfSpec(spec.name, spec.options)
  } catch (error) {
    return mismatch(`spec.options are invalid: ${error instanceof Error ? error.message : String(error)}`)
  }
  const describe = (t: TensorSpec): string => `${t.name}[${t.shape.join('x')}]${t.federated ? '' : ' local'}`
  const want = expected.tensors.map(describe).join(', ')
  const got = Array.isArray(spec.tensors) ? spec.tensors.map(describe).join(', ') : 'no tensor list'
  if (want !== got) mismatch(`spec.tensors must be ${want}; got ${got}`)
}

/**
 * Identifies what a stored weight vector fits: model name, architecture and tensor layout
 * (initializers do not matter). Weights saved under another fingerprint are not loaded.
 */
export function specFingerprint(spec: ModelSpec): string {
  return JSON.stringify([spec.name, spec.architecture, spec.tensors.map((t) => [t.name, t.shape, t.federated])])
}

/** A `hearth-mf-v1` model: its variables, scoring and loss. Call `dispose()` when done. */
export class MfModel {
  readonly spec: ModelSpec
  readonly buckets: number
  readonly dim: number
  /** Length of the flat federated vector. */
  readonly federatedLength: number
  readonly #layout: readonly TensorSlice[]
  readonly #federated: readonly tf.Variable[]
  readonly #embedding: tf.Variable<tf.Rank.R2>
  readonly #itemBias: tf.Variable<tf.Rank.R1>
  readonly #kernel: tf.Variable<tf.Rank.R2>
  readonly #towerBias: tf.Variable<tf.Rank.R1>
  readonly #user: tf.Variable<tf.Rank.R1>
  #disposed = false

  private constructor(spec: ModelSpec, variables: ReadonlyMap<string, tf.Variable>) {
    this.spec = spec
    this.buckets = spec.options.buckets
    this.dim = spec.options.dim
    this.#layout = federatedLayout(spec)
    this.federatedLength = this.#layout.reduce((n, s) => n + s.size, 0)
    const get = (name: string): tf.Variable => variables.get(name) as tf.Variable
    this.#federated = this.#layout.map((s) => get(s.tensor.name))
    this.#embedding = get('item_embedding') as tf.Variable<tf.Rank.R2>
    this.#itemBias = get('item_bias') as tf.Variable<tf.Rank.R1>
    this.#kernel = get('tower_kernel') as tf.Variable<tf.Rank.R2>
    this.#towerBias = get('tower_bias') as tf.Variable<tf.Rank.R1>
    this.#user = get('user_embedding') as tf.Variable<tf.Rank.R1>
  }

  /**
   * Builds the model of `spec` with every tensor drawn from its initializer. Variables are
   * unnamed on purpose: tfjs names are global to the engine, and a Node simulation holds
   * hundreds of models at once.
   */
  static create(spec: ModelSpec, uniform: UniformSource): MfModel {
    assertMfSpec(spec)
    const variables = new Map<string, tf.Variable>()
    for (const tensor of spec.tensors) {
      const values = new Float32Array(tensorSize(tensor))
      initTensor(tensor, values, uniform)
      variables.set(tensor.name, tf.variable(tf.tensor(values, [...tensor.shape], 'float32')))
    }
    return new MfModel(spec, variables)
  }

  /** The federated variables, in wire order: what a round trains. */
  get federatedVariables(): readonly tf.Variable[] {
    return this.#federated
  }

  /** The local user vector: what reconstruction trains. */
  get userVariable(): tf.Variable {
    return this.#user
  }

  /** Loads a flat federated vector (spec order). Copies: later changes to `weights` do not leak in. */
  setFederated(weights: Float32Array): void {
    this.#assertLive()
    assertFitsSpec(this.spec, weights)
    tf.tidy(() => {
      this.#layout.forEach(({ tensor, offset, size }, i) => {
        // slice(), not subarray(): the cpu backend keeps the very array a tensor is made from.
        const values = weights.slice(offset, offset + size)
        ;(this.#federated[i] as tf.Variable).assign(tf.tensor(values, [...tensor.shape], 'float32'))
      })
    })
  }

  /** The federated weights as one fresh flat vector (spec order). */
  async readFederated(): Promise<Float32Array> {
    this.#assertLive()
    const out = new Float32Array(this.federatedLength)
    for (let i = 0; i < this.#layout.length; i++) {
      const slice = this.#layout[i] as TensorSlice
      out.set(await (this.#federated[i] as tf.Variable).data<'float32'>(), slice.offset)
    }
    return out
  }

  /** Loads the user vector (length `dim`). */
  setUser(user: Float32Array): void {
    this.#assertLive()
    if (user.length !== this.dim) {
      throw new HearthError('HEARTH_ERR_MODEL_MISMATCH', `the user vector has ${this.dim} elements, got ${user.length}`)
    }
    tf.tidy(() => this.#user.assign(tf.tensor1d(user.slice(), 'float32')))
  }

  /** A fresh copy of the user vector. */
  async readUser(): Promise<Float32Array> {
    this.#assertLive()
    return (await this.#user.data<'float32'>()).slice()
  }

  /** Scores of the items in `buckets` for this user (see the formula above), in input order. */
  async score(buckets: Int32Array): Promise<Float32Array> {
    this.#assertLive()
    if (buckets.length === 0) return new Float32Array(0)
    const scores = tf.tidy(() => this.logits(tf.tensor1d(buckets, 'int32')))
    try {
      return (await scores.data<'float32'>()).slice()
    } finally {
      scores.dispose()
    }
  }

  /**
   * The item side of the score: the tower tanh(E[h] W + b) ([n, dim]) and the bias β[h] ([n]).
   * Depends on federated variables only. Allocates tensors: call inside `tf.tidy`.
   */
  itemSide(buckets: tf.Tensor1D): { readonly tower: tf.Tensor2D; readonly bias: tf.Tensor1D } {
    const items = lookupRows(this.#embedding, buckets) // [n, dim]
    const tower = tf.tanh(tf.add(tf.matMul(items, this.#kernel), this.#towerBias)) as tf.Tensor2D
    return { tower, bias: lookupRows(this.#itemBias, buckets) }
  }

  /** `score(u, i)` from the item side: u · tower(i) + β[h(i)]. Call inside `tf.tidy`. */
  logitsFrom(tower: tf.Tensor2D, bias: tf.Tensor1D): tf.Tensor1D {
    // A matrix-vector product, not sum(tower * u, 1): the gradient of that broadcast takes the
    // cpu backend's per-element broadcasting path, several times slower for the same numbers.
    const affinity = tf.reshape(tf.matMul(tower, tf.reshape(this.#user, [this.dim, 1])), [-1]) as tf.Tensor1D
    return tf.add(affinity, bias)
  }

  /** `score(u, i)` for a tensor of buckets. Allocates tensors: call inside `tf.tidy`. */
  logits(buckets: tf.Tensor1D): tf.Tensor1D {
    const { tower, bias } = this.itemSide(buckets)
    return this.logitsFrom(tower, bias)
  }

  /** The loss of a batch (see `lossFromLogits`). Call inside `tf.tidy` or a `minimize` closure. */
  loss(batch: Batch): tf.Scalar {
    const logits = this.logits(tf.tensor1d(batch.buckets, 'int32'))
    return this.lossFromLogits(logits, tf.tensor1d(batch.labels, 'float32'), tf.tensor1d(batch.weights, 'float32'), batch.weightSum)
  }

  /**
   * Weighted logistic loss plus `USER_L2 ‖u‖²`. For logit s, label y and weight w, each row
   * costs w · (max(s, 0) − s·y + log(1 + e^−|s|)), the numerically stable form of
   * −w·(y log σ(s) + (1 − y) log(1 − σ(s))) used by TensorFlow's
   * `sigmoid_cross_entropy_with_logits`; rows are summed and divided by the weight sum.
   */
  lossFromLogits(s: tf.Tensor1D, y: tf.Tensor1D, w: tf.Tensor1D, weightSum: number): tf.Scalar {
    const perRow = tf.add(tf.sub(tf.relu(s), tf.mul(s, y)), tf.log1p(tf.exp(tf.neg(tf.abs(s)))))
    const data = tf.div(tf.sum(tf.mul(w, perRow)), Math.max(weightSum, 1e-12))
    return tf.add(data, tf.mul(USER_L2, tf.sum(tf.square(this.#user)))) as tf.Scalar
  }

  /** Frees every variable. The model is unusable afterwards. */
  dispose(): void {
    if (this.#disposed) return
    this.#disposed = true
    for (const v of [...this.#federated, this.#user]) v.dispose()
  }

  #assertLive(): void {
    if (this.#disposed) throw new HearthError('HEARTH_ERR_NOT_INITIALIZED', 'the model was disposed')
  }
}
