/**
 * Gaussian noise for central DP (the aggregator adds N(0, (z·C)²) to the unmasked sum).
 *
 * Floating-point caution (I. Mironov, "On Significance of the Least Significant Bits for
 * Differential Privacy", CCS 2012): a Gaussian or Laplace sample computed in doubles does not
 * have the distribution the proof assumes — some doubles are never output, others too often —
 * and the released x + noise can reveal x. Hearth therefore adds central noise on a grid:
 *
 *   1. round each value to a multiple of g = 2^k (exact in binary, k chosen so σ/g >= 2^gridBits);
 *   2. add g·Y with Y ~ N_Z(0, (σ/g)²), the exact discrete Gaussian (CKS20 Alg. 3).
 *
 * Every output is a multiple of g, computed exactly (no rounding after the noise), so the
 * mechanism is exactly the discrete Gaussian mechanism on the grid. Rounding moves each
 * coordinate by at most g/2 on both neighbours, so the L2 sensitivity grows from Δ to
 * Δ + g·√d; CKS20 Thm 15 / Prop. 5 then give ρ-zCDP with ρ = (Δ + g√d)²/(2σ²), the continuous
 * Gaussian's RDP at the inflated sensitivity. Accounting: for q = 1 a 'sampled-gaussian' event
 * with z = σ/(Δ + g√d) is exact; for Poisson-sampled rounds MTZ19's analysis is specific to the
 * continuous Gaussian, and the rigorous alternative is a
 * 'sampled-distributed-discrete-gaussian' event with noisyClients = 1 (τ = 0; ZW19 Thm 5).
 *
 * `sampleContinuousGaussian` is kept for simulations and tests only.
 */
import { DiscreteGaussianSampler } from './discrete-gaussian.ts'
import type { RandomBits } from './random.ts'

/**
 * A standard-normal-scaled sample in doubles (Marsaglia polar method from 53-bit uniforms).
 * NOT for releases under DP (see the module note): use `gridGaussianNoise`.
 */
export function sampleContinuousGaussian(random: RandomBits, sigma: number): number {
  if (!(sigma >= 0 && Number.isFinite(sigma))) throw new RangeError(`sigma must be finite and >= 0, got ${sigma}`)
  for (;;) {
    const u = (2 * random.uint53()) / 2 ** 53 - 1
    const v = (2 * random.uint53()) / 2 ** 53 - 1
    const s = u * u + v * v
    if (s > 0 && s < 1) return sigma * u * Math.sqrt((-2 * Math.log(s)) / s)
  }
}

/** What `gridGaussianNoise` did, for the accountant and the audit log. */
export interface GridGaussianInfo {
  /** The grid step g (a power of two). */
  readonly grid: number
  /** σ² of the integer noise Y ~ N_Z(0, σ²) added in grid units (>= (σ/g)²). */
  readonly integerSigma2: number
  /** The L2 sensitivity inflation from rounding to the grid: g·√d. */
  readonly sensitivityInflation: number
}

/**
 * Rounds `values` to the grid g = 2^k and adds g·N_Z(0, (σ/g)²) to each, exactly (module note).
 *
 * @param values - the sum to release; left unchanged.
 * @param sigma - the noise standard deviation σ > 0 in the values' units (σ = z·C).
 * @param gridBits - σ/g >= 2^gridBits (default 20; the inflation g√d is then <= σ√d·2^−20).
 * @returns the noised values (every one a multiple of g) and the grid facts.
 */
export function gridGaussianNoise(
  random: RandomBits,
  values: ArrayLike<number>,
  sigma: number,
  gridBits = 20,
): { readonly values: Float64Array; readonly info: GridGaussianInfo } {
  if (!(sigma > 0 && Number.isFinite(sigma))) throw new RangeError(`sigma must be finite and > 0, got ${sigma}`)
  if (!Number.isInteger(gridBits) || gridBits < 0 || gridBits > 40) throw new RangeError(`gridBits must be an integer in [0, 40], got ${gridBits}`)
  const k = Math.floor(Math.log2(sigma)) - gridBits
  const grid = 2 ** k
  // σ/g in grid units; squared and rounded up to a multiple of 2^−10 keeps the bigints small.
  const integerSigma2 = Math.ceil((sigma / grid) ** 2 * 1024) / 1024
  const sampler = new DiscreteGaussianSampler(integerSigma2)
  const out = new Float64Array(values.length)
  for (let i = 0; i < values.length; i++) {
    const x = values[i] as number
    if (!Number.isFinite(x)) throw new RangeError(`values[${i}] must be finite, got ${x}`)
    const cell = Math.round(x / grid) // x/grid is exact (power of two); the sum below is exact while |cell + y| < 2^53
    out[i] = (cell + sampler.sample(random)) * grid
  }
  return { values: out, info: { grid, integerSigma2, sensitivityInflation: grid * Math.sqrt(values.length) } }
}
