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

/** Options of the default architecture, `hearth-mf-v1`. */
export interface MfOptions {
  /** Item ids are hashed into this many buckets, so the model never lists the catalog. */
  readonly buckets: number
  /** Embedding width. */
  readonly dim: number
}

export interface ModelSpec {
  readonly name: string
  readonly architecture: 'hearth-mf-v1'
  readonly options: MfOptions
  readonly tensors: readonly TensorSpec[]
}

export const DEFAULT_MF_OPTIONS: MfOptions = { buckets: 4096, dim: 16 }

/**
 * The default architecture: a hashed-item tower shared by everyone and a user vector that stays
 * on the device (Federated Reconstruction, Singhal et al. 2021):
 *
 *   score(u, i) = u · tanh(E[h(i)] W + b) + β[h(i)]
 *
 * E (item embeddings), W, b (the shared dense layer) and β (item bias) are federated; u is local.
 */
export function mfSpec(name: string, options: MfOptions = DEFAULT_MF_OPTIONS): ModelSpec {
  const { buckets, dim } = options
  if (!Number.isInteger(buckets) || buckets < 1 || buckets > 1 << 22) {
    throw new RangeError(`buckets must be an integer in [1, 2^22], got ${buckets}`)
  }
  if (!Number.isInteger(dim) || dim < 1 || dim > 1024) {
    throw new RangeError(`dim must be an integer in [1, 1024], got ${dim}`)
  }
  return {
    name,
    architecture: 'hearth-mf-v1',
    options: { buckets, dim },
    tensors: [
      { name: 'item_embedding', shape: [buckets, dim], federated: true, init: { kind: 'normal', std: 0.1 } },
      { name: 'item_bias', shape: [buckets], federated: true, init: { kind: 'zeros' } },
      { name: 'tower_kernel', shape: [dim, dim], federated: true, init: { kind: 'glorotUniform' } },
      { name: 'tower_bias', shape: [dim], federated: true, init: { kind: 'zeros' } },
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

/** The federated tensors of `spec` with their offsets, in wire order. */
export function federatedLayout(spec: ModelSpec): TensorSlice[] {
  const slices: TensorSlice[] = []
  let offset = 0
  for (const tensor of spec.tensors) {
    if (!tensor.federated) continue
    const size = tensorSize(tensor)
    slices.push({ tensor, offset, size })
    offset += size
  }
  return slices
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
