/**
 * Model specifications: which tensors a model has, their shapes, how they start, and which are
 * federated (take part in rounds) or local (never leave the device).
 *
 * Client and aggregator agree on a model only through its spec: the aggregator stores and serves
 * the federated tensors concatenated in spec order as one flat float32 vector; the device builds
 * its TensorFlow.js variables from the same spec and keeps the local tensors to itself.
 */
import { HearthError } from './errors.ts'

/** How a tensor is initialized before any training. */
export type TensorInit =
  | { readonly kind: 'zeros' }
  | { readonly kind: 'normal'; readonly std: number }
  | { readonly kind: 'glorotUniform' }

export interface TensorSpec {
  readonly name: string
  readonly shape: readonly number[]
  /** Federated tensors are averaged across devices; local ones never leave the device. */
  readonly federated: boolean
  readonly init: TensorInit
}

/**
 * Item features a `hearth-mf-v1` model reads (`protocol/features.ts`). Every device of a model
 * must agree on them, so they are part of the spec.
 */
export interface FeatureOptions {
  /** Category, tag and text tokens are hashed into this many buckets (`feature_embedding` rows). */
  readonly buckets: number
  /** Names of the numeric features, in input order (`numeric_kernel` rows). Default none. */
  readonly numeric?: readonly string[]
  /** Names of the string features that hold free text, split into words. Default none. */
  readonly text?: readonly string[]
}

/** Options of the default architecture, `hearth-mf-v1`. */
export interface MfOptions {
  /** Item ids are hashed into this many buckets, so the model never lists the catalog. */
  readonly buckets: number
  /** Embedding width. */
  readonly dim: number
  /** Item features through the shared tower. Default none: the model reads item ids only. */
  readonly features?: FeatureOptions
}

export interface ModelSpec {
  readonly name: string
  readonly architecture: 'hearth-mf-v1'
  readonly options: MfOptions
  readonly tensors: readonly TensorSpec[]
}

export const DEFAULT_MF_OPTIONS: MfOptions = { buckets: 4096, dim: 16 }

const MAX_NUMERIC_FEATURES = 256
const FEATURE_NAME = /^[\w.:-]{1,64}$/

function checkFeatureOptions(features: FeatureOptions): FeatureOptions {
  const { buckets, numeric = [], text = [] } = features
  if (!Number.isInteger(buckets) || buckets < 1 || buckets > 1 << 22) {
    throw new RangeError(`features.buckets must be an integer in [1, 2^22], got ${buckets}`)
  }
  if (!Array.isArray(numeric) || numeric.length > MAX_NUMERIC_FEATURES) throw new RangeError(`features.numeric must list at most ${MAX_NUMERIC_FEATURES} names`)
  if (!Array.isArray(text)) throw new RangeError('features.text must be a list of names')
  const names = [...numeric, ...text]
  for (const name of names) {
    if (typeof name !== 'string' || !FEATURE_NAME.test(name)) throw new RangeError(`feature name ${JSON.stringify(name)} must be 1 to 64 letters, digits, _ . : or -`)
  }
  if (new Set(names).size !== names.length) throw new RangeError('a feature is named twice in features.numeric and features.text')
  return { buckets, numeric: [...numeric], text: [...text] }
}

/**
 * The default architecture: a hashed-item tower shared by everyone and a user vector that stays
 * on the device (Federated Reconstruction, Singhal et al. 2021):
 *
 *   score(u, i) = u · tanh(x(i) W + b) + β[h(i)],   x(i) = E[h(i)] + mean_t F[g(t)] + n(i) N
 *
 * E (item embeddings), W, b (the shared dense layer) and β (item bias) are federated; u is local.
 * With `options.features`, x(i) also holds the mean of the feature embeddings F of the item's
 * feature tokens t (hashed by g) and its numeric features n(i) through N (`numeric_kernel`),
 * both federated; without, x(i) = E[h(i)] and the spec is exactly the features-free one.
 */
export function mfSpec(name: string, options: MfOptions = DEFAULT_MF_OPTIONS): ModelSpec {
  const { buckets, dim } = options
  if (!Number.isInteger(buckets) || buckets < 1 || buckets > 1 << 22) {
    throw new RangeError(`buckets must be an integer in [1, 2^22], got ${buckets}`)
  }
  if (!Number.isInteger(dim) || dim < 1 || dim > 1024) {
    throw new RangeError(`dim must be an integer in [1, 1024], got ${dim}`)
  }
  const features = options.features === undefined ? undefined : checkFeatureOptions(options.features)
  const featureTensors: TensorSpec[] = []
  if (features !== undefined) {
    featureTensors.push({ name: 'feature_embedding', shape: [features.buckets, dim], federated: true, init: { kind: 'normal', std: 0.1 } })
    const numeric = features.numeric?.length ?? 0
    if (numeric > 0) featureTensors.push({ name: 'numeric_kernel', shape: [numeric, dim], federated: true, init: { kind: 'glorotUniform' } })
  }
  return {
    name,
    architecture: 'hearth-mf-v1',
    options: features === undefined ? { buckets, dim } : { buckets, dim, features },
    tensors: [
      { name: 'item_embedding', shape: [buckets, dim], federated: true, init: { kind: 'normal', std: 0.1 } },
      { name: 'item_bias', shape: [buckets], federated: true, init: { kind: 'zeros' } },
      { name: 'tower_kernel', shape: [dim, dim], federated: true, init: { kind: 'glorotUniform' } },
      { name: 'tower_bias', shape: [dim], federated: true, init: { kind: 'zeros' } },
      ...featureTensors,
      { name: 'user_embedding', shape: [dim], federated: false, init: { kind: 'normal', std: 0.1 } },
    ],
  }
}

/** Number of elements of a tensor. */
export function tensorSize(tensor: TensorSpec): number {
  return tensor.shape.reduce((a, b) => a * b, 1)
}

/** Where each federated tensor sits in the flat federated vector. */
export interface TensorSlice {
  readonly tensor: TensorSpec
  readonly offset: number
  readonly size: number
}

function layout(spec: ModelSpec, federated: boolean): TensorSlice[] {
  const slices: TensorSlice[] = []
  let offset = 0
  for (const tensor of spec.tensors) {
    if (tensor.federated !== federated) continue
    const size = tensorSize(tensor)
    slices.push({ tensor, offset, size })
    offset += size
  }
  return slices
}

/** The federated tensors of `spec` with their offsets, in wire order. */
export function federatedLayout(spec: ModelSpec): TensorSlice[] {
  return layout(spec, true)
}

/** The local tensors of `spec` with their offsets in the device's flat local vector, in spec order. */
export function localLayout(spec: ModelSpec): TensorSlice[] {
  return layout(spec, false)
}

/** Length of the flat federated vector of `spec`. */
export function federatedLength(spec: ModelSpec): number {
  return spec.tensors.reduce((n, t) => (t.federated ? n + tensorSize(t) : n), 0)
}

/** A source of uniform numbers in [0, 1). Weight initialization needs no cryptographic quality. */
export type UniformSource = () => number

/** Fills `out` with values drawn for `tensor.init`. */
export function initTensor(tensor: TensorSpec, out: Float32Array, uniform: UniformSource): void {
  const init = tensor.init
  switch (init.kind) {
    case 'zeros':
      out.fill(0)
      return
    case 'normal':
      for (let i = 0; i < out.length; i++) out[i] = init.std * standardNormal(uniform)
      return
    case 'glorotUniform': {
      // Glorot & Bengio 2010, eq. 16: U(-l, l) with l = sqrt(6 / (fanIn + fanOut)).
      const fanIn = tensor.shape[0] ?? 1
      const fanOut = tensor.shape[1] ?? 1
      const limit = Math.sqrt(6 / (fanIn + fanOut))
      for (let i = 0; i < out.length; i++) out[i] = (2 * uniform() - 1) * limit
      return
    }
  }
}

/** A fresh flat federated vector for `spec`, drawn from each tensor's initializer. */
export function initFederatedWeights(spec: ModelSpec, uniform: UniformSource): Float32Array {
  const weights = new Float32Array(federatedLength(spec))
  for (const { tensor, offset, size } of federatedLayout(spec)) {
    initTensor(tensor, weights.subarray(offset, offset + size), uniform)
  }
  return weights
}

/** Throws `HEARTH_ERR_MODEL_MISMATCH` unless `weights` is a federated vector of `spec`. */
export function assertFitsSpec(spec: ModelSpec, weights: { length: number }): void {
  const expected = federatedLength(spec)
  if (weights.length !== expected) {
    throw new HearthError(
      'HEARTH_ERR_MODEL_MISMATCH',
      `model ${spec.name} has ${expected} federated weights, got ${weights.length}`,
    )
  }
}

// Box–Muller transform (Box & Muller 1958); 1 - u keeps the logarithm finite.
function standardNormal(uniform: UniformSource): number {
  const u = 1 - uniform()
  const v = uniform()
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)
}
