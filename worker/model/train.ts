/**
 * Training loops over an `MfModel`: minibatch epochs (local fine-tuning and the federated phase
 * of a round) and the reconstruction of the local user vector.
 *
 * Every call builds a fresh optimizer and disposes it on the way out: optimizer state from an
 * earlier round or another global version would be stale, and leaking its slots would make
 * memory grow round after round.
 */
import * as tf from '../tf.ts'
import type { UniformSource } from '../../protocol/model-spec.ts'
import { makeBatch, NegativeSampler } from './examples.ts'
import type { Example } from './examples.ts'
import type { MfModel } from './mf-model.ts'
import { shuffle } from './random.ts'

/**
 * `sgd`: plain SGD, the client optimizer of FedAvg (McMahan et al. 2017) and of the adaptive
 * server optimizers (Reddi et al., ICLR 2021, Alg. 2, where client steps are SGD): an update is
 * a sum of gradients, so its size tracks how much the device's data disagrees with the model.
 * `adam`: Kingma & Ba 2015; scale-free steps, robust for on-device fine-tuning and for fitting
 * the small user vector.
 */
export type OptimizerKind = 'sgd' | 'adam'

/** Which variables a loop updates; the others are held fixed. */
export type TrainableSet = 'federated' | 'local' | 'all'

export interface FitOptions {
  readonly epochs: number
  readonly batchSize: number
  readonly learningRate: number
  readonly optimizer: OptimizerKind
  readonly trainable: TrainableSet
  readonly negativesPerPositive: number
  readonly uniform: UniformSource
}

export interface FitResult {
  /** Optimizer steps taken. */
  readonly steps: number
  /** Mean loss of the steps of the last epoch (0 when no step was taken). */
  readonly loss: number
}

export interface ReconstructionOptions {
  /** Full-batch optimizer steps on the user vector. */
  readonly steps: number
  readonly learningRate: number
  readonly negativesPerPositive: number
  readonly uniform: UniformSource
}

/** Give the event loop a turn this often, so a long fit does not starve sockets and timers. */
const YIELD_EVERY_MS = 50

function makeOptimizer(kind: OptimizerKind, learningRate: number): tf.Optimizer {
  return kind === 'adam' ? tf.train.adam(learningRate) : tf.train.sgd(learningRate)
}

function variablesOf(model: MfModel, trainable: TrainableSet): tf.Variable[] {
  switch (trainable) {
    case 'federated':
      return [...model.federatedVariables]
    case 'local':
      return [model.userVariable]
    case 'all':
      return [...model.federatedVariables, model.userVariable]
  }
}

/** Runs one optimizer step per loss function; returns the mean loss. */
async function runSteps(losses: Iterable<() => tf.Scalar>, optimizer: tf.Optimizer, vars: tf.Variable[]): Promise<{ steps: number; loss: number }> {
  let steps = 0
  let total = 0
  let lastYield = Date.now()
  for (const loss of losses) {
    const cost = optimizer.minimize(loss, true, vars)
    if (cost === null) throw new Error('minimize returned no cost')
    try {
      total += (await cost.data())[0] ?? 0
    } finally {
      cost.dispose()
    }
    steps++
    if (Date.now() - lastYield > YIELD_EVERY_MS) {
      await new Promise((resolve) => setTimeout(resolve, 0))
      lastYield = Date.now()
    }
  }
  return { steps, loss: steps === 0 ? 0 : total / steps }
}

function* epochLosses(model: MfModel, examples: Example[], batchSize: number, sampler: NegativeSampler, uniform: UniformSource): Generator<() => tf.Scalar> {
  shuffle(examples, uniform)
  for (let start = 0; start < examples.length; start += batchSize) {
    const batch = makeBatch(examples.slice(start, start + batchSize), sampler)
    yield () => model.loss(batch)
  }
}

/**
 * Minibatch training: `epochs` passes over `examples`, shuffled each epoch, `batchSize` examples
 * per step plus their sampled negatives (drawn afresh every step).
 */
export async function fit(model: MfModel, examples: readonly Example[], options: FitOptions): Promise<FitResult> {
  if (examples.length === 0 || options.epochs === 0) return { steps: 0, loss: 0 }
  const rows = [...examples]
  const sampler = new NegativeSampler(model.buckets, options.negativesPerPositive, rows, options.uniform)
  const optimizer = makeOptimizer(options.optimizer, options.learningRate)
  const vars = variablesOf(model, options.trainable)
  try {
    let steps = 0
    let loss = 0
    for (let epoch = 0; epoch < options.epochs; epoch++) {
      const result = await runSteps(epochLosses(model, rows, options.batchSize, sampler, options.uniform), optimizer, vars)
      steps += result.steps
      loss = result.loss
    }
    return { steps, loss }
  } finally {
    optimizer.dispose()
  }
}

/**
 * Federated Reconstruction's local step (Singhal et al., NeurIPS 2021, Alg. 1, "reconstruction"):
 * with every federated variable frozen, fit the user vector to the user's data. Full batch, one
 * fixed draw of negatives, Adam, warm-started from the vector the device already holds (the
 * paper reconstructs from a fresh initialization; keeping the old vector converges in fewer
 * steps and changes nothing once converged).
 *
 * With the item side frozen, tower(i) and β[h(i)] are constants: they are computed once, and
 * each step is a logistic regression on them, costing a matrix-vector product.
 */
export async function reconstructUser(model: MfModel, examples: readonly Example[], options: ReconstructionOptions): Promise<FitResult> {
  if (examples.length === 0 || options.steps === 0) return { steps: 0, loss: 0 }
  const sampler = new NegativeSampler(model.buckets, options.negativesPerPositive, examples, options.uniform)
  const batch = makeBatch(examples, sampler)
  const [tower, bias, labels, weights] = tf.tidy(() => {
    const side = model.itemSide(tf.tensor1d(batch.buckets, 'int32'))
    return [side.tower, side.bias, tf.tensor1d(batch.labels, 'float32'), tf.tensor1d(batch.weights, 'float32')] as const
  })
  const optimizer = makeOptimizer('adam', options.learningRate)
  try {
    const loss = (): tf.Scalar => model.lossFromLogits(model.logitsFrom(tower, bias), labels, weights, batch.weightSum)
    return await runSteps(Array.from({ length: options.steps }, () => loss), optimizer, [model.userVariable])
  } finally {
    optimizer.dispose()
    tf.dispose([tower, bias, labels, weights])
  }
}
