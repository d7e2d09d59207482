/**
 * `HearthModel`: what the worker needs from a model, over tfjs-core only (no tfjs-layers). The
 * default is `MfModel` (`hearth-mf-v1`); an app may bring its own (docs/personalization.md, "Bringing your own model").
 *
 * The contract is a two-tower score,
 *
 *   score(user, i) = ⟨v_user, t(i)⟩ + p(i)
 *
 * where the item side — item vector t(i) and prior p(i) — depends on federated variables only,
 * and the user vector v_user on local variables only. Which tensors are federated is the spec's
 * `federated` flag; the flat federated vector is those tensors concatenated in spec order, the
 * flat local vector the others. Everything else follows from the contract and is generic:
 *
 * - the loss (weighted logistic, below) and the training loops (`train.ts`);
 * - Federated Reconstruction (Singhal et al., NeurIPS 2021): fit the local variables with the
 *   item side frozen;
 * - ranking reasons: "nearest item you engaged with" is nearest in t-space, "popular" is p;
 * - Thompson sampling: a Gaussian posterior over v_user (Laplace approximation of the logistic
 *   regression on t(i), Chapelle & Li, NeurIPS 2011, Alg. 3).
 */
import * as tf from '../tf.ts'
import { HearthError } from '../../protocol/errors.ts'
import { federatedLayout, initTensor, localLayout, tensorSize } from '../../protocol/model-spec.ts'
import type { ModelSpec, TensorSlice, UniformSource } from '../../protocol/model-spec.ts'
import type { Batch } from './examples.ts'
import type { EncodedItems, ItemEncoding } from './item-encoding.ts'

/** Weight of the L2 penalty `λ‖local‖²` on the local variables; keeps scores bounded for users with few events. */
export const USER_L2 = 1e-3

/** Encoded items as tensors (see `item-encoding.ts`). Feature tensors are absent without features. */
export interface ItemTensors {
  readonly count: number
  readonly buckets: tf.Tensor1D
  /** [n, K] token buckets and weights. */
  readonly tokens?: tf.Tensor2D
  readonly tokenWeights?: tf.Tensor2D
  /** [n, N] numeric features. */
  readonly numeric?: tf.Tensor2D
}

/** The item side of the score: item vectors t(i) ([n, d]) and priors p(i) ([n]). */
export interface ItemSide {
  readonly vectors: tf.Tensor2D
  readonly prior: tf.Tensor1D
}

/** A model the worker can train, reconstruct, serve and explain. Call `dispose()` when done. */
export interface HearthModel {
  readonly spec: ModelSpec
  /** How this model reads items: id buckets and feature inputs. */
  readonly encoding: ItemEncoding
  /** Width d of item vectors and of the user vector. */
  readonly dim: number
  readonly federatedLength: number
  readonly localLength: number
  /** The federated variables, in wire order. */
  readonly federatedVariables: readonly tf.Variable[]
  /** The local variables, in spec order: they never leave the device. */
  readonly localVariables: readonly tf.Variable[]
  setFederated(weights: Float32Array): void
  readFederated(): Promise<Float32Array>
  setLocal(values: Float32Array): void
  readLocal(): Promise<Float32Array>
  /** t(i) and p(i). Reads federated variables only. Allocates tensors: call inside `tf.tidy`. */
  itemSide(items: ItemTensors): ItemSide
  /** v_user ([d]). Reads local variables only. Allocates tensors: call inside `tf.tidy`. */
  userVector(): tf.Tensor1D
  dispose(): void
}

/** The variables of a spec, with flat federated and local views. Shared by models. */
export class SpecVariables {
  readonly spec: ModelSpec
  readonly federatedLength: number
  readonly localLength: number
  readonly federated: readonly tf.Variable[]
  readonly local: readonly tf.Variable[]
  readonly #byName: ReadonlyMap<string, tf.Variable>
  readonly #federatedLayout: readonly TensorSlice[]
  readonly #localLayout: readonly TensorSlice[]
  #disposed = false

  /**
   * Every tensor of `spec` drawn from its initializer. Variables are unnamed on purpose: tfjs
   * names are global to the engine, and a Node simulation holds hundreds of models at once.
   */
  constructor(spec: ModelSpec, uniform: UniformSource) {
    this.spec = spec
    const byName = new Map<string, tf.Variable>()
    for (const tensor of spec.tensors) {
      const values = new Float32Array(tensorSize(tensor))
      initTensor(tensor, values, uniform)
      // A variable shares its initial tensor's data; that tensor must go, or disposing the
      // variable would leave the data behind.
      const initial = tf.tensor(values, [...tensor.shape], 'float32')
      byName.set(tensor.name, tf.variable(initial))
      initial.dispose()
    }
    this.#byName = byName
    this.#federatedLayout = federatedLayout(spec)
    this.#localLayout = localLayout(spec)
    this.federated = this.#federatedLayout.map((s) => byName.get(s.tensor.name) as tf.Variable)
    this.local = this.#localLayout.map((s) => byName.get(s.tensor.name) as tf.Variable)
    this.federatedLength = this.#federatedLayout.reduce((n, s) => n + s.size, 0)
    this.localLength = this.#localLayout.reduce((n, s) => n + s.size, 0)
  }

  /** The variable of tensor `name`; throws if the spec has none. */
  get(name: string): tf.Variable {
    const variable = this.#byName.get(name)
    if (variable === undefined) throw new HearthError('HEARTH_ERR_MODEL_MISMATCH', `the spec has no tensor ${name}`)
    return variable
  }

  /** True when the spec has tensor `name`. */
  has(name: string): boolean {
    return this.#byName.has(name)
  }

  setFederated(weights: Float32Array): void {
    this.#set(this.#federatedLayout, this.federated, this.federatedLength, weights, 'federated weights')
  }

  readFederated(): Promise<Float32Array> {
    return this.#read(this.#federatedLayout, this.federated, this.federatedLength)
  }

  setLocal(values: Float32Array): void {
    this.#set(this.#localLayout, this.local, this.localLength, values, 'local values')
  }

  readLocal(): Promise<Float32Array> {
    return this.#read(this.#localLayout, this.local, this.localLength)
  }

  dispose(): void {
    if (this.#disposed) return
    this.#disposed = true
    for (const v of this.#byName.values()) v.dispose()
  }

  assertLive(): void {
    if (this.#disposed) throw new HearthError('HEARTH_ERR_NOT_INITIALIZED', 'the model was disposed')
  }

  #set(layout: readonly TensorSlice[], variables: readonly tf.Variable[], length: number, values: Float32Array, what: string): void {
    this.assertLive()
    if (values.length !== length) {
      throw new HearthError('HEARTH_ERR_MODEL_MISMATCH', `model ${this.spec.name} has ${length} ${what}, got ${values.length}`)
    }
    tf.tidy(() => {
      layout.forEach(({ tensor, offset, size }, i) => {
        // slice(), not subarray(): the cpu backend keeps the very array a tensor is made from.
        ;(variables[i] as tf.Variable).assign(tf.tensor(values.slice(offset, offset + size), [...tensor.shape], 'float32'))
      })
    })
  }

  async #read(layout: readonly TensorSlice[], variables: readonly tf.Variable[], length: number): Promise<Float32Array> {
    this.assertLive()
    const out = new Float32Array(length)
    for (let i = 0; i < layout.length; i++) out.set(await (variables[i] as tf.Variable).data<'float32'>(), (layout[i] as TensorSlice).offset)
    return out
  }
}

/** Encoded items as tensors. Allocates tensors: call inside `tf.tidy`. */
export function itemTensors(items: EncodedItems): ItemTensors {
  const n = items.count
  const K = n === 0 ? 0 : items.tokens.length / n
  const N = n === 0 ? 0 : items.numeric.length / n
  return {
    count: n,
    buckets: tf.tensor1d(items.buckets, 'int32'),
    ...(K > 0 ? { tokens: tf.tensor2d(items.tokens, [n, K], 'int32'), tokenWeights: tf.tensor2d(items.tokenWeights, [n, K], 'float32') } : {}),
    ...(N > 0 ? { numeric: tf.tensor2d(items.numeric, [n, N], 'float32') } : {}),
  }
}

/** ⟨v, t(i)⟩ for every row of `vectors`. Call inside `tf.tidy`. */
export function affinity(vectors: tf.Tensor2D, user: tf.Tensor1D): tf.Tensor1D {
  // A matrix-vector product, not sum(t * v, 1): the gradient of that broadcast takes the cpu
  // backend's per-element broadcasting path, several times slower for the same numbers.
  return tf.reshape(tf.matMul(vectors, tf.reshape(user, [-1, 1])), [-1]) as tf.Tensor1D
}

/** score = ⟨v_user, t(i)⟩ + p(i) from a computed item side. Call inside `tf.tidy`. */
export function logitsFrom(model: HearthModel, side: ItemSide): tf.Tensor1D {
  return tf.add(affinity(side.vectors, model.userVector()), side.prior)
}

/** Scores of encoded items. Call inside `tf.tidy`. */
export function logits(model: HearthModel, items: EncodedItems): tf.Tensor1D {
  return logitsFrom(model, model.itemSide(itemTensors(items)))
}

/**
 * Weighted logistic loss plus `USER_L2 ‖local‖²`. For logit s, label y and weight w, each row
 * costs w · (max(s, 0) − s·y + log(1 + e^−|s|)), the numerically stable form of
 * −w·(y log σ(s) + (1 − y) log(1 − σ(s))) used by TensorFlow's
 * `sigmoid_cross_entropy_with_logits`; rows are summed and divided by the weight sum.
 */
export function lossFromLogits(model: HearthModel, s: tf.Tensor1D, y: tf.Tensor1D, w: tf.Tensor1D, weightSum: number): tf.Scalar {
  const perRow = tf.add(tf.sub(tf.relu(s), tf.mul(s, y)), tf.log1p(tf.exp(tf.neg(tf.abs(s)))))
  const data = tf.div(tf.sum(tf.mul(w, perRow)), Math.max(weightSum, 1e-12))
  // A chain of adds, not tf.addN: AddN's gradient fails for a single input (tfjs-core 4.22).
  const penalty = model.localVariables.map((v) => tf.sum(tf.square(v))).reduce<tf.Tensor>((a, b) => tf.add(a, b), tf.scalar(0))
  return tf.add(data, tf.mul(USER_L2, penalty)) as tf.Scalar
}

/** The loss of a batch. Call inside `tf.tidy` or a `minimize` closure. */
export function batchLoss(model: HearthModel, batch: Batch): tf.Scalar {
  return lossFromLogits(model, logits(model, batch.items), tf.tensor1d(batch.labels, 'float32'), tf.tensor1d(batch.weights, 'float32'), batch.weightSum)
}

/** Scores of encoded items for the model's current user, in input order. */
export async function scoreItems(model: HearthModel, items: EncodedItems): Promise<Float32Array> {
  if (items.count === 0) return new Float32Array(0)
  const scores = tf.tidy(() => logits(model, items))
  try {
    return (await scores.data<'float32'>()).slice()
  } finally {
    scores.dispose()
  }
}
