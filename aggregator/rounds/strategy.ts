/**
 * The seams between the round engine and the arithmetic of a round (STYLE.md #8: privacy as a
 * wrapper around aggregation, like Flower's DP strategies around any strategy and TFF's
 * aggregation factories).
 *
 * A round reads, in order:
 *
 *   uploads ──AggregationStrategy──▶ AggregateResult {sum, count} ──ServerOptimizer──▶ weights
 *
 * - Plain averaging: {@link PlainSumStrategy} sums updates in the clear.
 * - Central DP wraps a strategy (`aggregator/privacy/central-dp.ts`): it checks each
 *   contribution's clip norm in `add`, adds Gaussian noise to the sum in `result` and reports the
 *   fixed denominator as `count`.
 * - Secure aggregation will replace the strategy: it takes `MaskedUpdate` frames and recovers
 *   only the sum in `result`, which is why `result` is asynchronous (unmasking needs a stage of
 *   its own with the survivors).
 * - FedAdagrad/FedAdam/FedYogi (Reddi et al. 2021, `adaptive-optimizer.ts`) are
 *   {@link StatefulOptimizer}s: their moments are stored with each version they publish.
 */
import type { FrameKind } from '../../protocol/frames.ts'
import type { TensorSlice } from '../../protocol/model-spec.ts'

/** What a round hands the strategy when it opens aggregation. */
export interface AggregationContext {
  readonly roundId: number
  readonly model: string
  /** Elements of the federated vector; the engine has already checked each upload's length. */
  readonly vectorLength: number
}

/** The combined uploads of one round. */
export interface AggregateResult {
  /** Elementwise sum of the accepted contributions, in float64 (noised by a DP wrapper). */
  readonly sum: Float64Array
  /** The divisor for the mean: the number of contributions, unless a DP wrapper fixes it. */
  readonly count: number
  /** What a DP wrapper did; absent without differential privacy. */
  readonly privacy?: AggregatePrivacyReport
}

/** A DP wrapper's account of one aggregation (`aggregator/privacy/central-dp.ts`). */
export interface AggregatePrivacyReport {
  /** Contributions summed. */
  readonly uploads: number
  /** Exact number of clipped updates, when the indicator sum is not noised; else null. */
  readonly clippedCount: number | null
  /** The noised fraction of unclipped updates (adaptive clipping, ATMR21); else null. */
  readonly unclippedFraction: number | null
  /** The grid steps the noise really used, per block (delta, then the count if noised). */
  readonly grids: readonly number[]
}

/** Builds one {@link Aggregation} per round. Validate parameters in the constructor. */
export interface AggregationStrategy {
  /** Recorded with each round, e.g. `plain-sum`. */
  readonly name: string
  /** The frame kind uploads must carry: `Update` for plain sums, `MaskedUpdate` for SecAgg. */
  readonly frameKind: FrameKind
  open(context: AggregationContext): Aggregation
}

/** The running aggregation of one round. */
export interface Aggregation {
  /**
   * Absorbs one participant's contribution, or throws a `HearthError` (for example
   * `HEARTH_ERR_VECTOR_VALUE`) and leaves the aggregate unchanged. The engine calls it at most
   * once per participant, with a vector of the right length and kind.
   */
  add(participant: string, values: Float32Array | Uint32Array): void
  /** Contributions absorbed so far. */
  readonly count: number
  /** The aggregate. Called once, after the upload stage closed, with `count >= 1`. */
  result(): Promise<AggregateResult>
}

/** Turns the current weights and a round's aggregate into the next weights. */
export interface ServerOptimizer {
  /** Recorded with each round, e.g. `fedavg`. */
  readonly name: string
  /**
   * Returns fresh weights; `current` is not modified. `layout` (the model's
   * `federatedLayout(spec)`) is what per-tensor settings refer to.
   */
  step(current: Float32Array, aggregate: AggregateResult, layout?: readonly TensorSlice[]): Float32Array
  /**
   * Throws `HEARTH_ERR_INVALID_CONFIG` when a per-tensor setting does not fit `layout`; the
   * service calls it for each model at startup, so a bad setting fails before any round.
   */
  checkLayout?(layout: readonly TensorSlice[]): void
}

/** What a stateful optimizer carries from one round to the next (adaptive moments). */
export interface OptimizerState {
  /** Steps taken since the moments started. */
  readonly rounds: number
  readonly m: Float64Array
  readonly v: Float64Array
}

/**
 * A {@link ServerOptimizer} with state between rounds. The engine never keeps one across rounds:
 * each round it resumes the template from the state stored with the base version
 * (`rounds/server-step.ts`), so several models, restarts and rollbacks each see exactly the
 * state of the version they build on.
 */
export interface StatefulOptimizer extends ServerOptimizer {
  /** A fresh optimizer with the same settings, resuming from `state` (null: from scratch). */
  resume(state: OptimizerState | null): StatefulOptimizer
  /** A copy of the state after the last step, or null before the first. */
  state(): OptimizerState | null
}

/** True for optimizers whose state must be stored with each version. */
export function isStateful(optimizer: ServerOptimizer): optimizer is StatefulOptimizer {
  return typeof (optimizer as Partial<StatefulOptimizer>).resume === 'function' && typeof (optimizer as Partial<StatefulOptimizer>).state === 'function'
}
