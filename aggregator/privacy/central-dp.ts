/**
 * Central differential privacy as a wrapper around any plain aggregation strategy (STYLE.md #8):
 * DP-FedAvg of H. B. McMahan, D. Ramage, K. Talwar, L. Zhang, "Learning Differentially Private
 * Recurrent Language Models", ICLR 2018 (MRTZ18), Algorithm 1, with the fixed-denominator
 * estimator f̃_f, plus adaptive clipping's private count (ATMR21, `adaptive-clipping.ts`).
 *
 * Read in order, per round:
 *   1. `add`: each upload is the client's delta clipped to C followed by its clipping indicator
 *      (`protocol/clip.ts`). A delta above C(1 + τ) or an indicator other than ±½ is refused
 *      (`HEARTH_ERR_VECTOR_VALUE`): a client cannot exceed the sensitivity the noise assumes.
 *      Accepted uploads go to the wrapped strategy, which sums them.
 *   2. `result`: the sum of deltas gets N(0, (z_Δ·C)²) per coordinate on the exact grid
 *      (`gridGaussianNoise`, CSPRNG); with adaptive clipping the indicator sum gets N(0, σ_b²)
 *      likewise; then the mean's denominator is the expected cohort size m, never the realized
 *      count (MRTZ18 Alg. 1: Δ = Σ Δ_k / (qW), so the sensitivity C/m holds whoever took part).
 *   3. The server optimizer applies the noised mean (FedAvg: x + sum/m).
 *
 * Without adaptive clipping the indicator sum is not released: it gives the operator the exact
 * number of clipped updates (n/2 − Σ), which central DP already trusts the aggregator with.
 */
import { CLIP_INDICATOR_ELEMENTS, ClipIndicator, l2Norm } from '../../protocol/clip.ts'
import { gridGaussianNoise } from '../../protocol/dp/sampling/gaussian.ts'
import { RandomBits } from '../../protocol/dp/sampling/random.ts'
import { HearthError } from '../../protocol/errors.ts'
import { FrameKind } from '../../protocol/frames.ts'
import type { AggregateResult, Aggregation, AggregationContext, AggregationStrategy } from '../rounds/strategy.ts'
import { unclippedFraction } from './adaptive-clipping.ts'
import type { CentralNoisePlan } from './central-noise.ts'
import { NORM_TOLERANCE } from './central-noise.ts'

export interface CentralDpOptions {
  /** The round's noise, planned (and checked against the budget) before the round opened. */
  readonly plan: CentralNoisePlan
  /** m: the fixed denominator, the expected cohort size. */
  readonly denominator: number
  /** Randomness for the noise. Default: the platform CSPRNG. Tests may pass a seeded source. */
  readonly random?: RandomBits
}

/** Wraps `inner` (which must sum plain `Update` frames) with central DP for one round. */
export class CentralDpStrategy implements AggregationStrategy {
  readonly name: string
  readonly frameKind = FrameKind.Update
  readonly #inner: AggregationStrategy
  readonly #plan: CentralNoisePlan
  readonly #denominator: number
  readonly #random: RandomBits

  constructor(inner: AggregationStrategy, options: CentralDpOptions) {
    if (inner.frameKind !== FrameKind.Update) {
      throw new RangeError(`central DP checks each delta's norm, so it wraps a strategy of plain Update frames; ${inner.name} takes kind ${inner.frameKind}`)
    }
    if (!(options.denominator > 0 && Number.isFinite(options.denominator))) {
      throw new RangeError(`denominator must be finite and > 0, got ${options.denominator}`)
    }
    this.name = `central-dp(${inner.name})`
    this.#inner = inner
    this.#plan = options.plan
    this.#denominator = options.denominator
    this.#random = options.random ?? new RandomBits()
  }

  open(context: AggregationContext): Aggregation {
    const inner = this.#inner.open({ ...context, vectorLength: context.vectorLength + CLIP_INDICATOR_ELEMENTS })
    return new CentralDpAggregation(inner, context.vectorLength, this.#plan, this.#denominator, this.#random)
  }
}

class CentralDpAggregation implements Aggregation {
  readonly #inner: Aggregation
  readonly #length: number
  readonly #plan: CentralNoisePlan
  readonly #denominator: number
  readonly #random: RandomBits
  readonly #maxNorm: number

  constructor(inner: Aggregation, length: number, plan: CentralNoisePlan, denominator: number, random: RandomBits) {
    this.#inner = inner
    this.#length = length
    this.#plan = plan
    this.#denominator = denominator
    this.#random = random
    this.#maxNorm = plan.clipNorm * (1 + NORM_TOLERANCE)
  }

  get count(): number {
    return this.#inner.count
  }

  add(participant: string, values: Float32Array | Uint32Array): void {
    if (!(values instanceof Float32Array)) throw new HearthError('HEARTH_ERR_MALFORMED_FRAME', 'central DP takes float32 updates')
    const d = this.#length
    if (values.length !== d + CLIP_INDICATOR_ELEMENTS) {
      throw new HearthError('HEARTH_ERR_VECTOR_LENGTH', `expected ${d} delta elements and the clipping indicator, got ${values.length} elements`)
    }
    const norm = l2Norm(values.subarray(0, d))
    // `!(<=)` also refuses NaN, which the frame codec already keeps out.
    if (!(norm <= this.#maxNorm)) {
      throw new HearthError('HEARTH_ERR_VECTOR_VALUE', `the delta's L2 norm ${norm.toPrecision(8)} exceeds the clip norm ${this.#plan.clipNorm}`)
    }
    const indicator = values[d]
    if (indicator !== ClipIndicator.Unclipped && indicator !== ClipIndicator.Clipped) {
      throw new HearthError('HEARTH_ERR_VECTOR_VALUE', `the clipping indicator must be ${ClipIndicator.Unclipped} or ${ClipIndicator.Clipped}, got ${String(indicator)}`)
    }
    this.#inner.add(participant, values)
  }

  async result(): Promise<AggregateResult> {
    const { sum, count: uploads } = await this.#inner.result()
    const d = this.#length
    const plan = this.#plan
    const noised = gridGaussianNoise(this.#random, sum.subarray(0, d), plan.delta.sigma, plan.gridBits)
    const grids = [noised.info.grid]
    const indicatorSum = sum[d] as number
    let clippedCount: number | null = null
    let unclipped: number | null = null
    if (plan.count === null) {
      // Σ(b_i − ½) = (uploads − clipped) − uploads/2; exact in float64 (multiples of ½).
      clippedCount = uploads / 2 - indicatorSum
      if (!Number.isInteger(clippedCount) || clippedCount < 0 || clippedCount > uploads) {
        throw new HearthError('HEARTH_ERR_ROUND_FAILED', `the clipping indicators sum to ${indicatorSum} over ${uploads} uploads`)
      }
    } else {
      const noisedCount = gridGaussianNoise(this.#random, [indicatorSum], plan.count.sigma, plan.gridBits)
      grids.push(noisedCount.info.grid)
      unclipped = unclippedFraction(noisedCount.values[0] as number, this.#denominator)
    }
    const planned = plan.count === null ? [plan.delta.grid] : [plan.delta.grid, plan.count.grid]
    if (grids.some((g, i) => g !== planned[i])) {
      // The accountant was told of the planned grid; never publish under another one.
      throw new HearthError('HEARTH_ERR_ROUND_FAILED', `the noise grid ${grids.join(', ')} differs from the planned ${planned.join(', ')}`)
    }
    return { sum: noised.values, count: this.#denominator, privacy: { uploads, clippedCount, unclippedFraction: unclipped, grids } }
  }
}
