/**
 * Adaptive clipping: G. Andrew, O. Thakkar, H. B. McMahan, S. Ramaswamy, "Differentially Private
 * Learning with Adaptive Clipping", NeurIPS 2021, arXiv:1905.03871 (ATMR21).
 *
 * Each round the clip norm C moves toward the γ-quantile of the update norms, using the
 * privatized fraction of updates that were not clipped (ATMR21 Algorithm 1, geometric update).
 * The fraction is released with its own noise σ_b, so the round is a combined Gaussian query on
 * (delta, indicator); ATMR21 §3 splits the noise so that the combination is exactly as private
 * as one Gaussian query with noise multiplier z (see {@link deltaNoiseMultiplier}).
 */

/**
 * z_Δ = (z^−2 − (2σ_b)^−2)^−1/2 (ATMR21 §3). The clipped delta (sensitivity C, noise z_Δ·C)
 * and the centred indicator sum (sensitivity 1/2, noise σ_b) together have noise-to-sensitivity
 * ratio 1/√(z_Δ^−2 + (2σ_b)^−2) = z, so the pair is one Gaussian mechanism with multiplier z.
 *
 * @throws RangeError unless z > 0 and 2σ_b > z (otherwise no z_Δ can make up the difference).
 */
export function deltaNoiseMultiplier(noiseMultiplier: number, countNoise: number): number {
  if (!(noiseMultiplier > 0 && Number.isFinite(noiseMultiplier))) throw new RangeError(`noiseMultiplier must be finite and > 0, got ${noiseMultiplier}`)
  if (!(countNoise > 0 && Number.isFinite(countNoise))) throw new RangeError(`countNoise must be finite and > 0, got ${countNoise}`)
  if (!(2 * countNoise > noiseMultiplier)) {
    throw new RangeError(`countNoise must exceed noiseMultiplier / 2 = ${noiseMultiplier / 2} (ATMR21 §3), got ${countNoise}`)
  }
  return (noiseMultiplier ** -2 - (2 * countNoise) ** -2) ** -0.5
}

/**
 * The default σ_b: m/20 for an expected cohort of m, as ATMR21 §4 use (the noise on the
 * fraction then has standard deviation 1/20), raised to z if smaller, so that z_Δ stays within
 * 2/√3 ≈ 1.155 times z (with σ_b = z, z_Δ = z/√(3/4)).
 */
export function defaultCountNoise(expectedCohortSize: number, noiseMultiplier: number): number {
  return Math.max(expectedCohortSize / 20, noiseMultiplier)
}

/**
 * b̄ = clamp(Σ(b_i − ½) + N(0, σ_b²)) / m + ½, in [0, 1]: the privatized fraction of updates
 * that were not clipped, from the noised sum of centred indicators over the fixed denominator m
 * (ATMR21 Algorithm 1; the ½ shift as in TensorFlow Privacy's `QuantileEstimatorQuery`).
 */
export function unclippedFraction(noisedIndicatorSum: number, denominator: number): number {
  if (!(denominator > 0)) throw new RangeError(`denominator must be > 0, got ${denominator}`)
  return Math.min(1, Math.max(0, noisedIndicatorSum / denominator + 0.5))
}

/**
 * ATMR21 Algorithm 1, geometric update: C ← C · exp(−η_C (b̄ − γ)). Too many unclipped
 * (b̄ > γ) shrinks C; too many clipped grows it.
 */
export function nextClipNorm(clipNorm: number, unclipped: number, targetQuantile: number, learningRate: number): number {
  const next = clipNorm * Math.exp(-learningRate * (unclipped - targetQuantile))
  if (!(next > 0 && Number.isFinite(next))) throw new RangeError(`the clip norm left (0, ∞): ${next}`)
  return next
}
