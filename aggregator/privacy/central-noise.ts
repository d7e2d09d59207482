/**
 * The noise of a central-DP round and the privacy event the accountant composes for it, computed
 * once, before the round opens, from the round's parameters alone. The same plan is checked
 * against the budget, handed to the strategy that adds the noise, and written to the ledger, so
 * what is accounted is what was done.
 *
 * Noise is added on a grid (`gridGaussianNoise`, protocol/dp/sampling/gaussian.ts): the released
 * sum is rounded to multiples of g = 2^k and g·N_Z(0, (σ/g)²) is added, the exact discrete
 * Gaussian. Rounding moves each neighbour's sum by at most g/2 per coordinate, so the L2
 * sensitivity grows from Δ to Δ + g√d (that module's note; Canonne, Kamath, Steinke, "The
 * Discrete Gaussian for Differential Privacy", NeurIPS 2020 — CKS20 — Thm 15 / Prop. 5).
 *
 * Under secure aggregation each device's upload is quantized by stochastic rounding to a grid of
 * step s (`protocol/secagg/quantize.ts`) before it is summed, which moves it by less than s per
 * coordinate: its L2 norm by less than s√d, by the same argument as for the noise grid.
 *
 * The query has one or two blocks, each with its own noise:
 *   - the clipped deltas: Δ₁ = C(1 + τ) + s√d + g₁√d, σ₁ = z_Δ·C (τ: the aggregator's norm
 *     tolerance; s = 0 without secure aggregation);
 *   - with adaptive clipping, the sum of centred indicators: Δ₂ = ½ + s + g₂, σ₂ = σ_b (ATMR21 §3).
 * Each block's RDP at order α is at most α(Δ/σ)²/2 (CKS20 Prop. 5, the discrete Gaussian), and
 * the Rényi divergence of independent blocks is the sum of theirs (T. van Erven, P. Harremoës,
 * "Rényi Divergence and Kullback-Leibler Divergence", IEEE Trans. IT 2014, additivity for
 * product distributions). So the round is as private as one Gaussian mechanism with
 * noise-to-sensitivity ratio z_eff = 1/√((Δ₁/σ₁)² + (Δ₂/σ₂)²): the "effective noise multiplier".
 *
 * The event:
 *   - q = 1: `sampled-gaussian` with z_eff. The discrete Gaussian's RDP is at most the
 *     continuous one's, α/(2 z_eff²) (CKS20 Prop. 5), which is the sampled Gaussian at q = 1
 *     (MTZ19), so this is exact.
 *   - q < 1: MTZ19's tight analysis of the sampled Gaussian relies on the continuous Gaussian, so
 *     as the grid module prescribes, the round is accounted as a discrete Gaussian with
 *     `noisyClients` = 1 (τ = 0), sensitivity 1/z_eff in units of the noise, amplified by
 *     Poisson subsampling with ZW19 Thm 5 (`sampled-distributed-discrete-gaussian`). Looser
 *     than MTZ19, but valid for what is really sampled.
 */
import type { PrivacyEvent } from '../../protocol/dp/events.ts'
import { gridGaussianNoise } from '../../protocol/dp/sampling/gaussian.ts'
import { RandomBits } from '../../protocol/dp/sampling/random.ts'
import type { RandomSource } from '../../protocol/dp/sampling/random.ts'

/**
 * τ: the aggregator accepts a delta of norm up to C(1 + τ), slack for clients that compute the
 * norm in another order than `protocol/clip.ts` (which itself never exceeds C). The sensitivity
 * the accountant uses includes it.
 */
export const NORM_TOLERANCE = 2 ** -20

/** The noise of one block of the released sum. */
export interface BlockNoise {
  /** σ in the values' units. */
  readonly sigma: number
  /** g: the grid step `gridGaussianNoise` uses for this σ. */
  readonly grid: number
  /** Δ + g√d: the sensitivity after rounding to the grid. */
  readonly sensitivity: number
}

/** Everything about a round's noise the strategy, the accountant and the ledger need. */
export interface CentralNoisePlan {
  readonly clipNorm: number
  readonly delta: BlockNoise
  /** The indicator block, with adaptive clipping; null otherwise (the count stays exact). */
  readonly count: BlockNoise | null
  readonly gridBits: number
  /** z_eff = 1/√Σ(Δ/σ)² over the blocks. */
  readonly effectiveNoiseMultiplier: number
  /** q: the sampling rate the accountant uses. */
  readonly samplingRate: number
  readonly event: PrivacyEvent
}

export interface CentralNoiseParams {
  /** C of this round. */
  readonly clipNorm: number
  /** z_Δ: σ₁ = z_Δ·C. */
  readonly deltaNoiseMultiplier: number
  /** σ_b with adaptive clipping, else null. */
  readonly countNoise: number | null
  /** d: elements of the federated delta. */
  readonly vectorLength: number
  readonly samplingRate: number
  readonly gridBits: number
  /** s: the quantization step of secure aggregation, 0 (the default) without it. */
  readonly quantizationStep?: number
}

/** A source that must never be read: planning asks `gridGaussianNoise` for its grid only. */
const NO_RANDOMNESS: RandomSource = {
  fill(): void {
    throw new Error('planning the noise grid must not draw randomness')
  },
}

/** The grid step `gridGaussianNoise` uses for σ, read from the function itself (zero values). */
export function gridFor(sigma: number, gridBits: number): number {
  return gridGaussianNoise(new RandomBits(NO_RANDOMNESS, 1), [], sigma, gridBits).info.grid
}

/** Plans a central-DP round's noise and its accountant event (see the module note). */
export function planCentralNoise(params: CentralNoiseParams): CentralNoisePlan {
  const { clipNorm: c, deltaNoiseMultiplier, countNoise, vectorLength: d, samplingRate: q, gridBits } = params
  const step = params.quantizationStep ?? 0
  if (!(step >= 0 && Number.isFinite(step))) throw new RangeError(`quantizationStep must be finite and >= 0, got ${step}`)
  if (!(c > 0 && Number.isFinite(c))) throw new RangeError(`clipNorm must be finite and > 0, got ${c}`)
  if (!(deltaNoiseMultiplier > 0 && Number.isFinite(deltaNoiseMultiplier))) {
    throw new RangeError(`deltaNoiseMultiplier must be finite and > 0, got ${deltaNoiseMultiplier}`)
  }
  if (!Number.isSafeInteger(d) || d < 1) throw new RangeError(`vectorLength must be a positive integer, got ${d}`)
  if (!(q > 0 && q <= 1)) throw new RangeError(`samplingRate must be in (0, 1], got ${q}`)
  const deltaSigma = deltaNoiseMultiplier * c
  const deltaGrid = gridFor(deltaSigma, gridBits)
  const delta: BlockNoise = { sigma: deltaSigma, grid: deltaGrid, sensitivity: c * (1 + NORM_TOLERANCE) + (step + deltaGrid) * Math.sqrt(d) }
  let ratio2 = (delta.sensitivity / delta.sigma) ** 2
  let count: BlockNoise | null = null
  if (countNoise !== null) {
    if (!(countNoise > 0 && Number.isFinite(countNoise))) throw new RangeError(`countNoise must be finite and > 0, got ${countNoise}`)
    const countGrid = gridFor(countNoise, gridBits)
    count = { sigma: countNoise, grid: countGrid, sensitivity: 0.5 + step + countGrid }
    ratio2 += (count.sensitivity / count.sigma) ** 2
  }
  const effectiveNoiseMultiplier = 1 / Math.sqrt(ratio2)
  const event: PrivacyEvent =
    q === 1
      ? { kind: 'sampled-gaussian', samplingRate: 1, noiseMultiplier: effectiveNoiseMultiplier }
      : {
          kind: 'sampled-distributed-discrete-gaussian',
          samplingRate: q,
          l2Sensitivity: 1 / effectiveNoiseMultiplier,
          localSigma: 1,
          noisyClients: 1,
          dim: d + (count === null ? 0 : 1),
        }
  return { clipNorm: c, delta, count, gridBits, effectiveNoiseMultiplier, samplingRate: q, event }
}
