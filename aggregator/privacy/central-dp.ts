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
 * Under secure aggregation (`rounds/secure-aggregation.ts`) step 1 cannot run — the aggregator
 * never sees an upload — and the sum arrives already made: {@link CentralDpStrategy.finishSum}
 * applies steps 2–3 to it. The quantization's effect on the sensitivity is in the noise plan
 * (`central-noise.ts`), and the indicator sum is then exact only up to rounding.
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
    return new CentralDpAggregation(inner, context.vectorLength, this.#plan, (sum, uploads) => this.#release(sum, uploads, false))
  }

  /**
   * Steps 2–3 on a sum made by secure aggregation: `result.sum` holds the sum of the dequantized
   * uploads (clipped delta, then indicator) of `result.count` devices.
   */
  async finishSum(result: AggregateResult): Promise<AggregateResult> {
    return this.#release(result.sum, result.count, true)
  }

  /** Noise on the sum of `uploads` uploads (delta block, then the indicator sum), divided by m. */
  #release(sum: Float64Array, uploads: number, quantized: boolean): AggregateResult {
    const d = sum.length - CLIP_INDICATOR_ELEMENTS
    const plan = this.#plan
    const noised = gridGaussianNoise(this.#random, sum.subarray(0, d), plan.delta.sigma, plan.gridBits)
    const grids = [noised.info.grid]
    const indicatorSum = sum[d] as number
    let clippedCount: number | null = null
    let unclipped: number | null = null
    if (plan.count === null) {
      clippedCount = countClipped(uploads, indicatorSum, quantized)
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

/**
 * Σ(b_i − ½) = (uploads − clipped) − uploads/2: exact in float64 (multiples of ½) for plain
 * sums; after quantization, within far less than ½ of it (one step per upload), so rounded.
 */
function countClipped(uploads: number, indicatorSum: number, quantized: boolean): number {
  const raw = uploads / 2 - indicatorSum
  const clipped = quantized ? Math.round(raw) : raw
  if (!Number.isInteger(clipped) || clipped < 0 || clipped > uploads || Math.abs(raw - clipped) >= 0.25) {
    throw new HearthError('HEARTH_ERR_ROUND_FAILED', `the clipping indicators sum to ${indicatorSum} over ${uploads} uploads`)
  }
  return clipped
}

class CentralDpAggregation implements Aggregation {
  readonly #inner: Aggregation
  readonly #length: number
  readonly #clipNorm: number
  readonly #maxNorm: number
  readonly #release: (sum: Float64Array, uploads: number) => AggregateResult

  constructor(inner: Aggregation, length: number, plan: CentralNoisePlan, release: (sum: Float64Array, uploads: number) => AggregateResult) {
    this.#inner = inner
    this.#length = length
    this.#clipNorm = plan.clipNorm
    this.#maxNorm = plan.clipNorm * (1 + NORM_TOLERANCE)
    this.#release = release
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
      throw new HearthError('HEARTH_ERR_VECTOR_VALUE', `the delta's L2 norm ${norm.toPrecision(8)} exceeds the clip norm ${this.#clipNorm}`)
    }
    const indicator = values[d]
    if (indicator !== ClipIndicator.Unclipped && indicator !== ClipIndicator.Clipped) {
      throw new HearthError('HEARTH_ERR_VECTOR_VALUE', `the clipping indicator must be ${ClipIndicator.Unclipped} or ${ClipIndicator.Clipped}, got ${String(indicator)}`)
    }
    this.#inner.add(participant, values)
  }

  async result(): Promise<AggregateResult> {
    const { sum, count: uploads } = await this.#inner.result()
    return this.#release(sum, uploads)
  }
}
