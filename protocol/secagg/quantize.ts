/**
 * Quantization of a float update into Z_{2^b}, and the inverse for a sum (DESIGN.md §4).
 *
 * Steps (Bonawitz et al. CCS 2017 §3 work over Z_R; the modulus sizing and stochastic rounding
 * follow Kairouz, Liu, Steinke, "The Distributed Discrete Gaussian Mechanism", ICML 2021, §4):
 *
 * 1. clip to L2 norm C: x ← x · min(1, C / ‖x‖₂), so every coordinate lies in [−C, C];
 * 2. scale and offset: q = (x + C) · L / (2C) ∈ [0, L];
 * 3. round stochastically: ⌊q⌋ + Bernoulli(q − ⌊q⌋), unbiased: E[round(q)] = q;
 * 4. the level count L = ⌊(2^b − 1) / n⌋ makes the integer sum of n clients at most n·L < 2^b,
 *    so the sum taken mod 2^b is the true sum: it never wraps.
 *
 * The inverse of a sum S of `count` clients is Σx ≈ S · 2C / L − count · C.
 */
import { randomWords } from './webcrypto.ts'

/** Parameters shared by every client of a group and the aggregator. */
export interface QuantizationParams {
  /** L2 clipping norm C > 0. */
  readonly clipNorm: number
  /** b: vectors live in Z_{2^b}, 1 <= b <= 32. */
  readonly modulusBits: number
  /** The largest number of clients whose inputs are summed (the group size n). */
  readonly maxSummands: number
}

/** L = ⌊(2^b − 1) / n⌋: the largest value a quantized coordinate may take (step 4). */
export function quantizationLevels(params: QuantizationParams): number {
  if (!(params.clipNorm > 0 && Number.isFinite(params.clipNorm))) throw new RangeError(`clipNorm must be a positive number, got ${params.clipNorm}`)
  return inputLimit(params.modulusBits, params.maxSummands)
}

/** ⌊(2^b − 1) / n⌋: the largest input element for which n inputs cannot wrap mod 2^b. */
export function inputLimit(modulusBits: number, maxSummands: number): number {
  if (!Number.isInteger(modulusBits) || modulusBits < 1 || modulusBits > 32) {
    throw new RangeError(`modulusBits must be an integer in [1, 32], got ${modulusBits}`)
  }
  if (!Number.isInteger(maxSummands) || maxSummands < 1) throw new RangeError(`maxSummands must be a positive integer, got ${maxSummands}`)
  const levels = Math.floor((2 ** modulusBits - 1) / maxSummands)
  if (levels < 1) {
    throw new RangeError(`modulusBits ${modulusBits} leaves no room for the sum of ${maxSummands} clients`)
  }
  return levels
}

/** Returns a copy of `x` scaled to L2 norm at most `clipNorm` (step 1). */
export function clipL2(x: ArrayLike<number>, clipNorm: number): Float64Array {
  let sq = 0
  for (let i = 0; i < x.length; i++) {
    const v = x[i] as number
    if (!Number.isFinite(v)) throw new RangeError(`element ${i} of the update is not a finite number`)
    sq += v * v
  }
  const norm = Math.sqrt(sq)
  const factor = norm > clipNorm ? clipNorm / norm : 1
  const out = new Float64Array(x.length)
  for (let i = 0; i < x.length; i++) out[i] = (x[i] as number) * factor
  return out
}

/** A source of uniform numbers in [0, 1). */
export type UniformSource = () => number

/**
 * Clips, scales and stochastically rounds `x` into [0, L] ⊂ Z_{2^b} (steps 1–3). `random` draws
 * the rounding coins; it defaults to the platform CSPRNG.
 */
export function quantize(x: ArrayLike<number>, params: QuantizationParams, random: UniformSource = secureUniform()): Uint32Array {
  const levels = quantizationLevels(params)
  const clipped = clipL2(x, params.clipNorm)
  const scale = levels / (2 * params.clipNorm)
  const out = new Uint32Array(clipped.length)
  for (let i = 0; i < clipped.length; i++) {
    const q = Math.min(levels, Math.max(0, ((clipped[i] as number) + params.clipNorm) * scale))
    const floor = Math.floor(q)
    out[i] = Math.min(levels, floor + (random() < q - floor ? 1 : 0))
  }
  return out
}

/**
 * The inverse for a sum: from the integer sum of `count` quantized inputs (as returned by the
 * aggregation, or added over groups) back to the sum of the clipped float inputs.
 */
export function dequantizeSum(sum: ArrayLike<number>, count: number, params: QuantizationParams): Float64Array {
  const levels = quantizationLevels(params)
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`count must be a non-negative integer, got ${count}`)
  const step = (2 * params.clipNorm) / levels
  const offset = count * params.clipNorm
  const out = new Float64Array(sum.length)
  for (let i = 0; i < sum.length; i++) out[i] = (sum[i] as number) * step - offset
  return out
}

/** Uniform [0, 1) numbers from the CSPRNG, drawn 32 bits at a time in batches. */
export function secureUniform(): UniformSource {
  let batch: Uint32Array = new Uint32Array(0)
  let next = 0
  return () => {
    if (next >= batch.length) {
      batch = randomWords(4096)
      next = 0
    }
    return (batch[next++] as number) / 2 ** 32
  }
}
