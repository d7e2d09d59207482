/**
 * Clipping a client's update to an L2 norm bound C, and the clipping indicator that says whether
 * it was clipped. One implementation, shared by the client (before upload), the aggregator (its
 * norm check) and later the worker's secure-aggregation path, so that all of them compute the
 * same norm bit for bit.
 *
 * Clipping bounds each user's contribution to the sum — its L2 sensitivity — by C, which the
 * Gaussian noise is calibrated to: H. B. McMahan, D. Ramage, K. Talwar, L. Zhang, "Learning
 * Differentially Private Recurrent Language Models", ICLR 2018 (MRTZ18), Algorithm 1,
 * ClipFn(Δ, S) = Δ · min(1, S/‖Δ‖).
 *
 * The indicator is b_i = 𝟙[‖Δ_i‖ <= C] of G. Andrew, O. Thakkar, H. B. McMahan, S. Ramaswamy,
 * "Differentially Private Learning with Adaptive Clipping", NeurIPS 2021 (ATMR21), Algorithm 1,
 * sent centred as b_i − 1/2: one element after the delta, +1/2 when the delta was within C and
 * −1/2 when it was clipped. Centred, one user changes the sum of indicators by at most 1/2 (the
 * sensitivity ATMR21 §3 uses), and summed with the other uploads it tells the server only how
 * many were clipped, never who: with n uploads, Σ(b_i − 1/2) = (n − clipped) − n/2, so
 * clipped = n/2 − Σ. Under secure aggregation the server sees only that sum.
 */

/** The value of the clipping-indicator element (ATMR21's b_i − 1/2). */
export const ClipIndicator = {
  /** ‖Δ‖ <= C: sent as is. */
  Unclipped: 0.5,
  /** ‖Δ‖ > C: scaled down to norm C. */
  Clipped: -0.5,
} as const
export type ClipIndicator = (typeof ClipIndicator)[keyof typeof ClipIndicator]

/** Elements a private upload carries after the federated delta: the clipping indicator. */
export const CLIP_INDICATOR_ELEMENTS = 1

/**
 * ‖x‖₂, summed left to right in float64. Client and aggregator both call this on the float32
 * values that travel, so they get the identical double. Scales by max |x_i| first only if the
 * plain sum of squares overflows (float64 inputs above ~1e154).
 */
export function l2Norm(values: ArrayLike<number>): number {
  let squares = 0
  for (let i = 0; i < values.length; i++) {
    const x = values[i] as number
    squares += x * x
  }
  if (squares !== Number.POSITIVE_INFINITY) return Math.sqrt(squares)
  let max = 0
  for (let i = 0; i < values.length; i++) max = Math.max(max, Math.abs(values[i] as number))
  let scaled = 0
  for (let i = 0; i < values.length; i++) {
    const x = (values[i] as number) / max
    scaled += x * x
  }
  return max * Math.sqrt(scaled)
}

/** What {@link clipL2} did. */
export interface ClipResult {
  /** The clipped vector, float32 (the wire type): ‖values‖₂ <= C as {@link l2Norm} computes it. */
  readonly values: Float32Array
  /** The norm of the input after rounding it to float32, before clipping. */
  readonly norm: number
  /** True when the input's norm exceeded C and it was scaled down (ATMR21: b_i = 0). */
  readonly clipped: boolean
}

/** Scale-down steps tried after rounding; one suffices in practice (see `clipL2`). */
const MAX_SHRINK_STEPS = 64

/**
 * Clips `values` to L2 norm `clipNorm` (MRTZ18 Algorithm 1, ClipFn): returned unchanged (as
 * float32) when ‖values‖ <= C, otherwise scaled by C/‖values‖, which keeps the direction.
 *
 * Rounding the scaled values to float32 moves each by at most 2^−24 relatively, so the norm of
 * the result can exceed C by that much; the result is then shrunk by (1 − 2^−22) until
 * `l2Norm(result) <= C` holds exactly — the aggregator refuses anything above C.
 *
 * @param values - the update (e.g. the federated delta); not modified.
 * @param clipNorm - C, finite and > 0.
 * @throws TypeError if `clipNorm` is not a number; RangeError if it is not finite and positive,
 *   or if a value is not finite as float32.
 */
export function clipL2(values: ArrayLike<number>, clipNorm: number): ClipResult {
  if (typeof clipNorm !== 'number') throw new TypeError(`clipNorm must be a number, got ${typeof clipNorm}`)
  if (!(clipNorm > 0 && Number.isFinite(clipNorm))) throw new RangeError(`clipNorm must be finite and > 0, got ${clipNorm}`)
  const source = Float32Array.from(values)
  for (let i = 0; i < source.length; i++) {
    if (!Number.isFinite(source[i])) throw new RangeError(`values[${i}] must be finite as float32, got ${values[i]}`)
  }
  const norm = l2Norm(source)
  if (norm <= clipNorm) return { values: source, norm, clipped: false }
  const out = new Float32Array(source.length)
  let factor = clipNorm / norm
  for (let step = 0; ; step++) {
    if (step === MAX_SHRINK_STEPS) throw new RangeError(`could not clip to ${clipNorm} in float32`)
    // Each product is computed in float64 and rounded once, on the store into the Float32Array.
    for (let i = 0; i < source.length; i++) out[i] = (source[i] as number) * factor
    if (l2Norm(out) <= clipNorm) return { values: out, norm, clipped: true }
    factor *= 1 - 2 ** -22
  }
}

/** What {@link clipForUpload} produced. */
export interface PrivateUpload {
  /** The clipped delta, then the clipping indicator: `delta.length + CLIP_INDICATOR_ELEMENTS` elements. */
  readonly values: Float32Array
  /** The delta's norm before clipping. */
  readonly norm: number
  readonly clipped: boolean
}

/**
 * The upload of a private round: `delta` clipped to `clipNorm` ({@link clipL2}) followed by the
 * clipping indicator ({@link ClipIndicator}).
 */
export function clipForUpload(delta: ArrayLike<number>, clipNorm: number): PrivateUpload {
  const result = clipL2(delta, clipNorm)
  const upload = new Float32Array(result.values.length + CLIP_INDICATOR_ELEMENTS)
  upload.set(result.values)
  upload[result.values.length] = result.clipped ? ClipIndicator.Clipped : ClipIndicator.Unclipped
  return { values: upload, norm: result.norm, clipped: result.clipped }
}
