/**
 * The integer encoding of distributed DP (KLS21 §4; DESIGN.md §3 `distributed`), both ends:
 *
 * - a device turns its private upload x (L2 norm at most C') into its share of the noised sum:
 *   clip to C', multiply by the scale s, round each coordinate stochastically to an integer
 *   (unbiased: ⌊y⌋ + Bernoulli(y − ⌊y⌋)), add an independent noise draw (discrete Gaussian,
 *   CKS20, or Skellam) and reduce mod 2^b, where secure aggregation then works;
 * - the aggregator reads a group's sum mod 2^b back as a signed value in [−2^{b−1}, 2^{b−1})
 *   and divides by s.
 *
 * Modular clipping (KLS21 §4.3): no value is clipped to the modulus on the device, and the sum
 * wraps only if it leaves [−2^{b−1}, 2^{b−1}); `planDistributedDp` chose s so that the signal of
 * the largest group plus its noise stays inside, the noise with probability 1 − 1e−9 per
 * coordinate. Signed reading is what makes one group sum decode on its own: group sums are
 * centred before they are added, so several groups never wrap together.
 *
 * No random rotation: `protocol/dp` has none, so the plan uses the 'worst-case' signal bound,
 * which needs no assumption about the coordinates' distribution.
 */
import { clipL2 } from '../clip.ts'
import type { DistributedNoiseMechanism } from '../messages.ts'
import { DiscreteGaussianSampler } from './sampling/discrete-gaussian.ts'
import { SkellamSampler } from './sampling/poisson.ts'
import { RandomBits } from './sampling/random.ts'

/** What a device needs to make its share. */
export interface DistributedEncoding {
  readonly mechanism: DistributedNoiseMechanism
  /** C': the L2 bound of the input (the private upload: √(C² + ¼)). */
  readonly clipNorm: number
  /** s: integers per unit. */
  readonly scale: number
  /** The variance of each noise draw, in integers². */
  readonly localVariance: number
  /** b: the share lives in Z_{2^b}. */
  readonly modulusBits: number
}

const TWO_32 = 2 ** 32

/** A sampler of one noise share coordinate. */
function noiseSampler(mechanism: DistributedNoiseMechanism, variance: number): { sample(random: RandomBits): number } {
  switch (mechanism) {
    case 'discrete-gaussian':
      return new DiscreteGaussianSampler(variance)
    case 'skellam':
      return new SkellamSampler(variance)
    default: {
      const unknown: unknown = mechanism
      throw new RangeError(`unknown distributed noise mechanism ${String(unknown)}`)
    }
  }
}

/**
 * This device's noised share of the sum, in Z_{2^b} (see the module note). `random` draws the
 * rounding coins and the noise; default the platform CSPRNG.
 */
export function encodeNoisedShare(input: ArrayLike<number>, encoding: DistributedEncoding, random: RandomBits = new RandomBits()): Uint32Array {
  const { clipNorm, scale, localVariance, modulusBits } = encoding
  if (!(scale > 0 && Number.isFinite(scale))) throw new RangeError(`scale must be a positive number, got ${scale}`)
  const modulus = modulusFor(modulusBits)
  const sampler = noiseSampler(encoding.mechanism, localVariance)
  const clipped = clipL2(input, clipNorm).values
  const out = new Uint32Array(clipped.length)
  for (let i = 0; i < clipped.length; i++) {
    const y = (clipped[i] as number) * scale
    const floor = Math.floor(y)
    const rounded = floor + (random.uint32() / TWO_32 < y - floor ? 1 : 0)
    const value = (rounded + sampler.sample(random)) % modulus
    out[i] = value < 0 ? value + modulus : value
  }
  return out
}

/** A sum mod 2^b read as the signed integer in [−2^{b−1}, 2^{b−1}) it stands for. */
export function centredSum(sum: ArrayLike<number>, modulusBits: number): Float64Array {
  const modulus = modulusFor(modulusBits)
  const half = modulus / 2
  const out = new Float64Array(sum.length)
  for (let i = 0; i < sum.length; i++) {
    const v = (sum[i] as number) % modulus
    out[i] = v >= half ? v - modulus : v
  }
  return out
}

function modulusFor(bits: number): number {
  if (!Number.isInteger(bits) || bits < 2 || bits > 32) throw new RangeError(`modulusBits must be an integer in [2, 32], got ${bits}`)
  return 2 ** bits
}
