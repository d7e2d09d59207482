/**
 * Exact samplers for the discrete Laplace and the discrete Gaussian, CKS20 (Canonne, Kamath,
 * Steinke, "The Discrete Gaussian for Differential Privacy", NeurIPS 2020, arXiv:2004.00010)
 * Algorithms 2 and 3, on exact rationals: the output distribution is exactly
 *
 *   P[X = x] ∝ exp(−x²/(2σ²)),  x ∈ Z   (discrete Gaussian N_Z(0, σ²), CKS20 Def. 1)
 *
 * with σ² the exact value of the double given (or a `Rational`). Randomness: `RandomBits`.
 *
 * Cost: a constant expected number of loop iterations whatever σ (CKS20 §5.3: each trial of
 * Algorithm 3 succeeds with probability >= ~0.6 for t = ⌊σ⌋ + 1), each a few exact Bernoulli
 * draws, with bigints only in the final Bernoulli(exp(−γ)) test; see bench/dp.ts for the
 * measured time for 10^5 samples.
 */
import { bernoulliExpMinusOne, bernoulliExpNeg } from './bernoulli.ts'
import { isqrt, rationalFromNumber, type Rational } from './rational.ts'
import type { RandomBits } from './random.ts'

/**
 * Discrete Laplace: P[X = x] ∝ exp(−|x|/t) for a positive integer scale t — CKS20 Algorithm 2
 * with s = 1. U uniform in [0, t) accepted with probability e^{−U/t}, plus t times a
 * geometric count of Bernoulli(e^{−1}) successes, gives a geometric magnitude; a fair sign,
 * rejecting "−0" so zero is not counted twice.
 */
export function sampleDiscreteLaplace(random: RandomBits, t: number): number {
  if (!Number.isSafeInteger(t) || t < 1) throw new RangeError(`t must be a positive safe integer, got ${t}`)
  const bigT = BigInt(t)
  for (;;) {
    const u = random.below(t)
    if (!bernoulliExpNeg(random, BigInt(u), bigT)) continue
    let v = 0
    while (bernoulliExpMinusOne(random)) v++
    const magnitude = u + t * v
    const negative = random.bit()
    if (negative && magnitude === 0) continue
    return negative ? -magnitude : magnitude
  }
}

/** A sampler for N_Z(0, σ²) with its constants computed once. */
export class DiscreteGaussianSampler {
  /** σ² exactly, as num/den. */
  readonly sigma2: Rational
  readonly #t: number
  readonly #bigT: bigint
  /** 2·σ²·t² as a fraction over den²: γ(y) = (|y|·t·den − num)² / (2·num·den·t²). */
  readonly #gammaDen: bigint

  /**
   * @param sigma2 - the variance parameter σ² > 0 of N_Z(0, σ²) (a double is taken at its exact
   *   binary value; its standard deviation is slightly below σ, CKS20 Cor. 9).
   */
  constructor(sigma2: number | Rational) {
    const r = typeof sigma2 === 'number' ? rationalFromNumber(sigma2, 'sigma2') : sigma2
    if (typeof r.num !== 'bigint' || typeof r.den !== 'bigint') throw new TypeError('sigma2 must be a number or a Rational of bigints')
    if (r.num <= 0n || r.den <= 0n) throw new RangeError('sigma2 must be > 0')
    this.sigma2 = r
    // CKS20 Algorithm 3: t = ⌊σ⌋ + 1, and ⌊σ⌋ = ⌊√⌊σ²⌋⌋.
    const t = isqrt(r.num / r.den) + 1n
    if (t > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError('sigma2 is too large (sigma must be below 2^53)')
    this.#bigT = t
    this.#t = Number(t)
    this.#gammaDen = 2n * r.num * r.den * t * t
  }

  /** One draw from N_Z(0, σ²). */
  sample(random: RandomBits): number {
    const { num, den } = this.sigma2
    for (;;) {
      // CKS20 Algorithm 3: Y ~ Lap_Z(t); accept with probability exp(−(|Y| − σ²/t)²/(2σ²)).
      const y = sampleDiscreteLaplace(random, this.#t)
      const diff = BigInt(Math.abs(y)) * this.#bigT * den - num
      if (bernoulliExpNeg(random, diff * diff, this.#gammaDen)) return y
    }
  }

  /** Fills `out` with independent draws (values are integers, |x| < 2^31 for any sane σ). */
  sampleInto(random: RandomBits, out: Int32Array | Float64Array): void {
    for (let i = 0; i < out.length; i++) out[i] = this.sample(random)
  }
}

/** One draw from N_Z(0, σ²) (builds the constants each call; reuse a sampler for many). */
export function sampleDiscreteGaussian(random: RandomBits, sigma2: number | Rational): number {
  return new DiscreteGaussianSampler(sigma2).sample(random)
}

