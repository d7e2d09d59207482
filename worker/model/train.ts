/**
 * Training loops over a `HearthModel`: minibatch epochs (local fine-tuning and the federated
 * phase of a round) and the reconstruction of the local variables.
 *
 * Every call builds a fresh optimizer and disposes it on the way out: optimizer state from an
 * earlier round or another global version would be stale, and leaking its slots would make
 * memory grow round after round.
 *
 * A budget bounds a loop: it stops between steps once its deadline has passed or the tfjs engine
 * holds more than its byte limit (DESIGN.md §6: the device trains within a time and memory
 * budget). Steps already taken are kept; the result says why it stopped.
 */
import * as tf from '../tf.ts'
import type { UniformSource } from '../../protocol/model-spec.ts'
import { makeBatch, NegativeSampler } from './examples.ts'
import type { Example, TrainingData } from './examples.ts'
import { batchLoss, itemTensors, logitsFrom, lossFromLogits } from './hearth-model.ts'
import type { HearthModel } from './hearth-model.ts'
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

/** Limits of one training call. */
export interface TrainingBudget {
  /** Epoch milliseconds after which no further step starts. */
  readonly deadline?: number
  /** Largest `tf.memory().numBytes` at which a further step may start. */
  readonly maxTensorBytes?: number
  /** Clock of `deadline`. Default `Date.now`. */
  readonly now?: () => number
}

/** Why a loop ended: it ran every step, or its budget stopped it. */
export type StopReason = 'done' | 'time' | 'memory'

export interface FitOptions {
  readonly epochs: number
  readonly batchSize: number
  readonly learningRate: number
  readonly optimizer: OptimizerKind
  readonly trainable: TrainableSet
  readonly negativesPerPositive: number
  readonly uniform: UniformSource
  readonly budget?: TrainingBudget
}

export interface FitResult {
  /** Optimizer steps taken. */
  readonly steps: number
  /** Mean loss of the steps of the last epoch (0 when no step was taken). */
  readonly loss: number
  readonly stoppedBy: StopReason
}

/** Settings of the reconstruction of the user vector (`reconstructUser`). */
export interface ReconstructionSettings {
  /** Full-batch Adam steps on the user vector. */
  readonly steps: number
  readonly learningRate: number
  /** Most recent items used when installing a global version. */
  readonly maxExamples: number
}

/** What a device does by default; the quality benchmark evaluates with the same. */
export const DEFAULT_RECONSTRUCTION: ReconstructionSettings = { steps: 30, learningRate: 0.05, maxExamples: 1_000 }

export interface ReconstructionOptions {
  /** Full-batch optimizer steps on the local variables. */
  readonly steps: number
  readonly learningRate: number
  readonly negativesPerPositive: number
  readonly uniform: UniformSource
  /** Most recent examples used (Federated Reconstruction's "support set"). Default all. */
  readonly maxExamples?: number
}

/** Give the event loop a turn this often, so a long fit does not starve sockets and timers. */
const YIELD_EVERY_MS = 50

function makeOptimizer(kind: OptimizerKind, learningRate: number): tf.Optimizer {
  return kind === 'adam' ? tf.train.adam(learningRate) : tf.train.sgd(learningRate)
}

function variablesOf(model: HearthModel, trainable: TrainableSet): tf.Variable[] {
  switch (trainable) {
    case 'federated':
      return [...model.federatedVariables]
    case 'local':
      return [...model.localVariables]
    case 'all':
      return [...model.federatedVariables, ...model.localVariables]
  }
}

/** The reason to stop before the next step, if any. */
function overBudget(budget: TrainingBudget | undefined): StopReason | null {
  if (budget === undefined) return null
  if (budget.deadline !== undefined && (budget.now ?? Date.now)() >= budget.deadline) return 'time'
  if (budget.maxTensorBytes !== undefined && tf.memory().numBytes > budget.maxTensorBytes) return 'memory'
  return null
}

/** Runs one optimizer step per loss function; returns the mean loss. */
async function runSteps(losses: Iterable<() => tf.Scalar>, optimizer: tf.Optimizer, vars: tf.Variable[], budget?: TrainingBudget): Promise<FitResult> {
  let steps = 0
  let total = 0
  let lastYield = Date.now()
  for (const loss of losses) {
    const stop = overBudget(budget)
    if (stop !== null) return { steps, loss: steps === 0 ? 0 : total / steps, stoppedBy: stop }
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
  return { steps, loss: steps === 0 ? 0 : total / steps, stoppedBy: 'done' }
}

function* epochLosses(model: HearthModel, data: TrainingData, rows: Example[], batchSize: number, sampler: NegativeSampler, uniform: UniformSource): Generator<() => tf.Scalar> {
  shuffle(rows, uniform)
  for (let start = 0; start < rows.length; start += batchSize) {
    const batch = makeBatch(data, rows.slice(start, start + batchSize), sampler)
    yield () => batchLoss(model, batch)
  }
}

/**
 * Minibatch training: `epochs` passes over the examples, shuffled each epoch, `batchSize`
 * examples per step plus their sampled negatives (drawn afresh every step).
 */
export async function fit(model: HearthModel, data: TrainingData, options: FitOptions): Promise<FitResult> {
  if (data.examples.length === 0 || options.epochs === 0) return { steps: 0, loss: 0, stoppedBy: 'done' }
  const rows = [...data.examples]
  const sampler = new NegativeSampler(data, model.encoding.buckets, options.negativesPerPositive, options.uniform)
  const optimizer = makeOptimizer(options.optimizer, options.learningRate)
  const vars = variablesOf(model, options.trainable)
  try {
    let steps = 0
    let loss = 0
    for (let epoch = 0; epoch < options.epochs; epoch++) {
      const result = await runSteps(epochLosses(model, data, rows, options.batchSize, sampler, options.uniform), optimizer, vars, options.budget)
      steps += result.steps
      if (result.steps > 0) loss = result.loss
      if (result.stoppedBy !== 'done') return { steps, loss, stoppedBy: result.stoppedBy }
    }
    return { steps, loss, stoppedBy: 'done' }
  } finally {
    optimizer.dispose()
  }
}

/**
 * Federated Reconstruction's local step (Singhal et al., NeurIPS 2021, Alg. 1, "reconstruction"):
 * with every federated variable frozen, fit the local variables to the user's data. Full batch,
 * one fixed draw of negatives, Adam, warm-started from the values the device already holds (the
 * paper reconstructs from a fresh initialization; keeping the old values converges in fewer
 * steps and changes nothing once converged).
 *
 * With the item side frozen, t(i) and p(i) are constants: they are computed once, and each step
 * is a logistic regression on them, costing a matrix-vector product.
 */
export async function reconstructUser(model: HearthModel, data: TrainingData, options: ReconstructionOptions): Promise<FitResult> {
  const examples = options.maxExamples === undefined ? data.examples : data.examples.slice(0, options.maxExamples)
  if (examples.length === 0 || options.steps === 0) return { steps: 0, loss: 0, stoppedBy: 'done' }
  const sampler = new NegativeSampler(data, model.encoding.buckets, options.negativesPerPositive, options.uniform)
  const batch = makeBatch(data, examples, sampler)
  const [vectors, prior, labels, weights] = tf.tidy(() => {
    const side = model.itemSide(itemTensors(batch.items))
    return [side.vectors, side.prior, tf.tensor1d(batch.labels, 'float32'), tf.tensor1d(batch.weights, 'float32')] as const
  })
  const optimizer = makeOptimizer('adam', options.learningRate)
  try {
    const loss = (): tf.Scalar => lossFromLogits(model, logitsFrom(model, { vectors, prior }), labels, weights, batch.weightSum)
    return await runSteps(Array.from({ length: options.steps }, () => loss), optimizer, [...model.localVariables])
  } finally {
    optimizer.dispose()
    tf.dispose([vectors, prior, labels, weights])
  }
}
