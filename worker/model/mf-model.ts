/**
 * The `hearth-mf-v1` model in TensorFlow.js, built from its `ModelSpec` (protocol/model-spec.ts):
 *
 *   score(u, i) = u · tanh(x(i) W + b) + β[h(i)],   x(i) = E[h(i)] + Σ_k w_k F[g_k(i)] + n(i) N
 *
 * with E = `item_embedding`, β = `item_bias`, W = `tower_kernel`, b = `tower_bias`, and when the
 * spec has item features F = `feature_embedding` (token weights w_k = 1/#tokens: a mean) and
 * N = `numeric_kernel` — all federated — and u = `user_embedding` (local). h hashes the item id
 * (`hash.ts`), g its feature tokens (`item-encoding.ts`). One `tf.Variable` per tensor.
 *
 * As a `HearthModel`: t(i) = tanh(x(i) W + b), p(i) = β[h(i)], v_user = u. Nothing penalizes the
 * item rows as a whole, so an optimizer step leaves the rows of buckets absent from a batch
 * exactly unchanged: a device's update touches only the buckets it trained on.
 */
import * as tf from '../tf.ts'
import { HearthError } from '../../protocol/errors.ts'
import { mfSpec } from '../../protocol/model-spec.ts'
import type { ModelSpec, TensorSpec, UniformSource } from '../../protocol/model-spec.ts'
import { SpecVariables } from './hearth-model.ts'
import type { HearthModel, ItemSide, ItemTensors } from './hearth-model.ts'
import { itemEncoding } from './item-encoding.ts'
import type { ItemEncoding } from './item-encoding.ts'
import { lookupRows } from './lookup.ts'

export { USER_L2 } from './hearth-model.ts'

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

/** A `hearth-mf-v1` model. Call `dispose()` when done. */
export class MfModel implements HearthModel {
  readonly spec: ModelSpec
  readonly encoding: ItemEncoding
  readonly buckets: number
  readonly dim: number
  readonly #vars: SpecVariables
  readonly #embedding: tf.Variable<tf.Rank.R2>
  readonly #itemBias: tf.Variable<tf.Rank.R1>
  readonly #kernel: tf.Variable<tf.Rank.R2>
  readonly #towerBias: tf.Variable<tf.Rank.R1>
  readonly #features: tf.Variable<tf.Rank.R2> | null
  readonly #numericKernel: tf.Variable<tf.Rank.R2> | null
  readonly #user: tf.Variable<tf.Rank.R1>

  private constructor(spec: ModelSpec, vars: SpecVariables) {
    this.spec = spec
    this.buckets = spec.options.buckets
    this.dim = spec.options.dim
    this.encoding = itemEncoding(this.buckets, spec.options.features)
    this.#vars = vars
    this.#embedding = vars.get('item_embedding') as tf.Variable<tf.Rank.R2>
    this.#itemBias = vars.get('item_bias') as tf.Variable<tf.Rank.R1>
    this.#kernel = vars.get('tower_kernel') as tf.Variable<tf.Rank.R2>
    this.#towerBias = vars.get('tower_bias') as tf.Variable<tf.Rank.R1>
    this.#features = vars.has('feature_embedding') ? (vars.get('feature_embedding') as tf.Variable<tf.Rank.R2>) : null
    this.#numericKernel = vars.has('numeric_kernel') ? (vars.get('numeric_kernel') as tf.Variable<tf.Rank.R2>) : null
    this.#user = vars.get('user_embedding') as tf.Variable<tf.Rank.R1>
  }

  /** Builds the model of `spec` with every tensor drawn from its initializer. */
  static create(spec: ModelSpec, uniform: UniformSource): MfModel {
    assertMfSpec(spec)
    return new MfModel(spec, new SpecVariables(spec, uniform))
  }

  get federatedLength(): number {
    return this.#vars.federatedLength
  }

  get localLength(): number {
    return this.#vars.localLength
  }

  get federatedVariables(): readonly tf.Variable[] {
    return this.#vars.federated
  }

  get localVariables(): readonly tf.Variable[] {
    return this.#vars.local
  }

  /** Loads a flat federated vector (spec order). Copies: later changes to `weights` do not leak in. */
  setFederated(weights: Float32Array): void {
    this.#vars.setFederated(weights)
  }

  /** The federated weights as one fresh flat vector (spec order). */
  readFederated(): Promise<Float32Array> {
    return this.#vars.readFederated()
  }

  /** Loads the local vector: for this model, the user vector (length `dim`). */
  setLocal(values: Float32Array): void {
    this.#vars.setLocal(values)
  }

  /** A fresh copy of the local vector (the user vector). */
  readLocal(): Promise<Float32Array> {
    return this.#vars.readLocal()
  }

  itemSide(items: ItemTensors): ItemSide {
    this.#vars.assertLive()
    let x = lookupRows(this.#embedding, items.buckets) as tf.Tensor2D // [n, d]
    if (this.#features !== null && items.tokens !== undefined && items.tokenWeights !== undefined) {
      const [n, K] = items.tokens.shape
      // Σ_k w_k F[g_k]: gather n·K rows, weight them, add them up per item. A gather and a sum
      // rather than a segment sum, which the wasm backend lacks.
      const rows = lookupRows(this.#features, tf.reshape(items.tokens, [-1]) as tf.Tensor1D)
      const weighted = tf.mul(tf.reshape(rows, [n, K, this.dim]), tf.expandDims(items.tokenWeights, 2))
      x = tf.add(x, tf.sum(weighted, 1))
    }
    if (this.#numericKernel !== null && items.numeric !== undefined) x = tf.add(x, tf.matMul(items.numeric, this.#numericKernel))
    const vectors = tf.tanh(tf.add(tf.matMul(x, this.#kernel), this.#towerBias)) as tf.Tensor2D
    return { vectors, prior: lookupRows(this.#itemBias, items.buckets) }
  }

  userVector(): tf.Tensor1D {
    this.#vars.assertLive()
    return this.#user
  }

  /** Frees every variable. The model is unusable afterwards. */
  dispose(): void {
    this.#vars.dispose()
  }
}
