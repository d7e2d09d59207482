/**
 * A device's part of a federated round for `hearth-mf-v1`, in the order of Federated
 * Reconstruction (Singhal et al., NeurIPS 2021, Alg. 1):
 *
 * 1. load the round's global federated weights g;
 * 2. reconstruct the local user vector u with g frozen;
 * 3. train the federated weights with u frozen, `plan.epochs` epochs of minibatches;
 * 4. return Δ = g' − g, the federated delta. u never enters it.
 *
 * The model is left holding g' and the reconstructed u: the caller decides what to keep.
 *
 * A `hearth-mf-v1` model trains steps 2–3 on the rows of its id tables the device's data can
 * reach (`row-subset.ts`): the same result, at a cost that follows the device's data rather
 * than the number of buckets.
 */
import type { TrainingPlan } from '../../protocol/messages.ts'
import type { UniformSource } from '../../protocol/model-spec.ts'
import type { TrainingData } from './examples.ts'
import type { HearthModel } from './hearth-model.ts'
import { MfModel } from './mf-model.ts'
import { rowSubset } from './row-subset.ts'
import { fit, reconstructUser } from './train.ts'
import type { OptimizerKind, StopReason, TrainingBudget } from './train.ts'

export interface RoundTrainingOptions {
  readonly plan: TrainingPlan
  readonly optimizer: OptimizerKind
  readonly negativesPerPositive: number
  /** `maxExamples`: reconstruction fits on the most recent examples only (its "support set"). */
  readonly reconstruction: { readonly steps: number; readonly learningRate: number; readonly maxExamples: number }
  readonly uniform: UniformSource
  /** Bounds the federated phase (step 3); reconstruction is short and always runs. */
  readonly budget?: TrainingBudget
}

export interface RoundTrainingOutcome {
  /** g', the trained federated weights. */
  readonly trained: Float32Array
  /** g' − g, element by element in float32. */
  readonly delta: Float32Array
  /** Mean loss of the last epoch of step 3. */
  readonly loss: number
  readonly steps: number
  readonly stoppedBy: StopReason
}

/** Runs steps 1–4 above on `model` from the global weights `global`. */
export async function trainFromGlobal(
  model: HearthModel,
  global: Float32Array,
  data: TrainingData,
  options: RoundTrainingOptions,
): Promise<RoundTrainingOutcome> {
  const subset = model instanceof MfModel ? await rowSubset(model, global, data) : null
  if (subset === null) {
    model.setFederated(global)
    const outcome = await trainSteps(model, data, options)
    return { ...outcome, delta: difference(outcome.trained, global) }
  }
  try {
    const outcome = await trainSteps(subset.model, subset.data, options)
    const trained = subset.expand(outcome.trained, global)
    model.setFederated(trained)
    model.setLocal(await subset.model.readLocal())
    return { ...outcome, trained, delta: difference(trained, global) }
  } finally {
    subset.model.dispose()
  }
}

/** Steps 2–3 on a model that holds the round's global weights; returns its trained weights. */
async function trainSteps(model: HearthModel, data: TrainingData, options: RoundTrainingOptions): Promise<Omit<RoundTrainingOutcome, 'delta'>> {
  const { plan, uniform, negativesPerPositive } = options
  const reconstruction = options.reconstruction
  await reconstructUser(model, data, {
    steps: reconstruction.steps,
    learningRate: reconstruction.learningRate,
    maxExamples: reconstruction.maxExamples,
    negativesPerPositive,
    uniform,
  })
  const { loss, steps, stoppedBy } = await fit(model, data, {
    epochs: plan.epochs,
    batchSize: plan.batchSize,
    learningRate: plan.learningRate,
    optimizer: options.optimizer,
    trainable: 'federated',
    negativesPerPositive,
    uniform,
    ...(options.budget === undefined ? {} : { budget: options.budget }),
  })
  return { trained: await model.readFederated(), loss, steps, stoppedBy }
}

/** g' − g, element by element in float32. */
function difference(trained: Float32Array, global: Float32Array): Float32Array {
  const delta = new Float32Array(trained.length)
  for (let i = 0; i < delta.length; i++) delta[i] = (trained[i] as number) - (global[i] as number)
  return delta
}
