/**
 * An exact Poisson sampler for rational means, and the Skellam distribution built on it.
 *
 * Skellam noise (AKL21: Agarwal, Kairouz, Liu, "The Skellam Mechanism for Differentially
 * Private Federated Learning", NeurIPS 2021) is P1 − P2 with P1, P2 ~ Poisson(μ/2)
 * independent, variance μ. Library Poisson samplers work in floating point; this one makes no
 * floating-point decision about a probability, in the spirit of CKS20 §5.
 *
 * Method: rejection sampling (von Neumann 1951) from a rational envelope around the mode
 * m = ⌊λ⌋. With r(k) = P[k]/P[m] (≤ 1, rational: r(k) = λ^{k−m} m!/k!) the envelope is
 * - 1 on the body [m − w, m + w], w = ⌈2.5√λ⌉;
 * - c_u·ρ_u^{j} at k = m + w + j (j >= 1), ρ_u = λ/(m + w + 1) >= every later ratio
 *   P[k+1]/P[k] = λ/(k+1), and c_u a power of two >= r(m + w);
 * - c_l·ρ_l^{j} at k = m − w − j, ρ_l = (m − w)/λ >= P[k−1]/P[k] = k/λ there, c_l >= r(m − w).
 * A proposal (region by exact rational weights, then a uniform body point or a geometric tail
 * offset from Bernoulli(ρ) trials) is accepted with probability r(k)/envelope(k) <= 1, a
 * product of rationals. That product is estimated in floating point with a proven relative
 * error bound (each factor is a quotient of integers below 2^53, so each of the 2 roundings per
 * factor is within 2^−53); a uniform U from 53 random bits decides unless it falls within the
 * error band, and then the exact product (bigints) is compared with U extended by fresh bits.
 * The accepted k has exactly the Poisson(λ) distribution.
 *
 * λ is used as a rational a/2^k with 2^k·(2λ + 64) <= 2^50 (so all integers stay below 2^53):
 * the double given is rounded *up* to the next multiple of 2^−k, a relative change below
 * 2^−40 for λ >= 1e−3 (none when λ is already such a multiple). For Skellam noise a larger
 * variance is safe: Sk(μ') = Sk(μ) + Sk(μ' − μ), extra independent noise (post-processing).
 *
 * Cost: O(√λ) floating-point operations per draw (the acceptance product), about 2 proposals
 * per accepted draw; tails (about 1% of proposals) cost O(√λ) exact Bernoulli draws. Keep λ
 * moderate (say <= 10^8) — see bench/dp.ts.
 */
import { bernoulli, bernoulliBig } from './bernoulli.ts'
import type { RandomBits } from './random.ts'

const MAX_LAMBDA = 2 ** 32
const TWO_53 = 2 ** 53
const U = 2 ** -53

type Emit = (num: number, den: number) => void

/** Bernoulli(p) where p = 2^shift · Π num_i/den_i is ≤ 1, given by a factor generator. */
function acceptProduct(random: RandomBits, shift: number, factors: (emit: Emit) => void): boolean {
  let p = 2 ** shift
  let count = 0
  factors((num, den) => {
    p *= num / den
    count++
  })
  // (1 + u)^{2k+2} − 1 <= 2.01 (k + 1) u for k < 2^40; 4u more for the bounds' own rounding.
  const err = 2.01 * (count + 1) * U + 4 * U
  const u53 = random.uint53()
  if (p >= 2 ** -1000) {
    if ((u53 + 1) / TWO_53 <= p * (1 - err)) return true
    if (u53 / TWO_53 >= p * (1 + err)) return false
  } else if (u53 > 0) {
    return false // p < 2^-1000 <= u53/2^53 <= U: reject for certain
  }
  // Exact: U = (u53 + V)/2^53 with V uniform in [0, 1); U < N/D ⟺ V < (N·2^53 − u53·D)/D.
  let num = 1n
  let den = 1n
  factors((n, d) => {
    num *= BigInt(n)
    den *= BigInt(d)
  })
  if (shift >= 0) num <<= BigInt(shift)
  else den <<= BigInt(-shift)
  const rest = num * BigInt(TWO_53) - BigInt(u53) * den
  if (rest <= 0n) return false
  if (rest >= den) return true
  return bernoulliBig(random, rest, den)
}

/** A power-of-two exponent e with 2^e >= p·(1 + err) (p estimated as in acceptProduct). */
function powerOfTwoAbove(factors: (emit: Emit) => void): number {
  let p = 1
  let count = 0
  factors((num, den) => {
    p *= num / den
    count++
  })
  const bound = p * (1 + 2.01 * (count + 1) * U + 4 * U)
  let e = 0
  while (2 ** (e - 1) >= bound && e > -1070) e--
  return e
}

/** An exact sampler of Poisson(λ) for one λ, constants computed once. */
export class PoissonSampler {
  /** The mean actually used: λ rounded up to a dyadic rational (see the module note). */
  readonly lambda: number
  readonly #a: number // λ = a / b
  readonly #b: number
  readonly #m: number
  readonly #w: number
  readonly #bodyLow: number
  readonly #bodyCount: number
  readonly #lowTail: boolean
  readonly #upperShift: number // c_u = 2^upperShift
  readonly #lowerShift: number
  readonly #weights: readonly [bigint, bigint, bigint] // body, upper tail, lower tail
  readonly #total: bigint

  /** @param lambda - the mean, 0 < λ < 2^32. */
  constructor(lambda: number) {
    if (typeof lambda !== 'number') throw new TypeError('lambda must be a number')
    if (!(lambda > 0 && lambda < MAX_LAMBDA)) throw new RangeError(`lambda must be in (0, 2^32), got ${lambda}`)
    // b = 2^k, the largest with b·(2λ + 64) <= 2^50, so that every b·i below stays < 2^53.
    const k = Math.min(52, Math.max(0, Math.floor(Math.log2(2 ** 50 / (2 * lambda + 64)))))
    let b = 2 ** k
    let a = Math.ceil(lambda * b)
    while (a % 2 === 0 && b > 1) {
      a /= 2
      b /= 2
    }
    this.#a = a
    this.#b = b
    this.lambda = a / b
    const m = Math.floor(a / b)
    const w = Math.max(1, Math.ceil(2.5 * Math.sqrt(a / b)))
    this.#m = m
    this.#w = w
    this.#bodyLow = Math.max(0, m - w)
    this.#bodyCount = m + w - this.#bodyLow + 1
    const l0 = m - w
    this.#lowTail = l0 >= 1
    // c_u >= r(m + w) = Π_{i=m+1}^{m+w} λ/i.
    this.#upperShift = powerOfTwoAbove((emit) => {
      for (let i = m + 1; i <= m + w; i++) emit(a, b * i)
    })
    this.#lowerShift = this.#lowTail
      ? powerOfTwoAbove((emit) => {
          for (let i = l0 + 1; i <= m; i++) emit(b * i, a) // r(l0) = Π_{i=l0+1}^{m} i/λ
        })
      : 0
    // Envelope masses: body = count; upper = c_u·ρ_u/(1 − ρ_u) = c_u·a/(b(m+w+1) − a);
    // lower = c_l·ρ_l/(1 − ρ_l) = c_l·l0·b/(a − l0·b). Over a common denominator:
    const du = BigInt(b * (m + w + 1) - a)
    const dl = this.#lowTail ? BigInt(a - l0 * b) : 1n
    const eu = BigInt(-this.#upperShift)
    const el = BigInt(-this.#lowerShift)
    const body = BigInt(this.#bodyCount) * du * dl << (eu + el)
    const upper = (BigInt(a) * dl) << el
    const lower = this.#lowTail ? (BigInt(l0 * b) * du) << eu : 0n
    this.#weights = [body, upper, lower]
    this.#total = body + upper + lower
  }

  /** One draw from Poisson(λ). */
  sample(random: RandomBits): number {
    const a = this.#a
    const b = this.#b
    const m = this.#m
    const w = this.#w
    for (;;) {
      const r = random.belowBig(this.#total)
      if (r < this.#weights[0]) {
        const k = this.#bodyLow + random.below(this.#bodyCount)
        const ok =
          k >= m
            ? acceptProduct(random, 0, (emit) => {
                for (let i = m + 1; i <= k; i++) emit(a, b * i)
              })
            : acceptProduct(random, 0, (emit) => {
                for (let i = k + 1; i <= m; i++) emit(b * i, a)
              })
        if (ok) return k
      } else if (r < this.#weights[0] + this.#weights[1]) {
        const top = m + w + 1
        let j = 1
        while (bernoulli(random, a, b * top)) j++ // geometric, ratio ρ_u = a/(b(m+w+1))
        // k >= 2^33 > 2λ: P[k] < e^{-2^31}; rejected to keep every factor an exact double.
        if (b * (top + j) >= TWO_53) continue
        const ok = acceptProduct(random, -this.#upperShift, (emit) => {
          for (let i = m + 1; i <= m + w; i++) emit(a, b * i)
          for (let i = 1; i <= j; i++) emit(top, m + w + i) // (λ/(m+w+i))/ρ_u
        })
        if (ok) return m + w + j
      } else {
        const l0 = m - w
        let j = 1
        while (bernoulli(random, l0 * b, a)) j++ // geometric, ratio ρ_l = l0·b/a
        const k = l0 - j
        if (k < 0) continue
        const ok = acceptProduct(random, -this.#lowerShift, (emit) => {
          for (let i = l0 + 1; i <= m; i++) emit(b * i, a)
          for (let i = 0; i < j; i++) emit(l0 - i, l0)
        })
        if (ok) return k
      }
    }
  }
}

/**
 * Skellam noise of variance μ: P1 − P2 with P1, P2 ~ Poisson(μ/2) (AKL21 §2). The variance
 * actually used is 2·λ with λ = μ/2 rounded up to a dyadic rational (see the module note).
 */
export class SkellamSampler {
  readonly #poisson: PoissonSampler
  /** The variance actually used (>= the one asked for). */
  readonly variance: number

  /** @param variance - μ > 0, the variance of each draw. */
  constructor(variance: number) {
    if (typeof variance !== 'number') throw new TypeError('variance must be a number')
    if (!(variance > 0 && variance < 2 * MAX_LAMBDA)) throw new RangeError(`variance must be in (0, 2^33), got ${variance}`)
    this.#poisson = new PoissonSampler(variance / 2)
    this.variance = 2 * this.#poisson.lambda
  }

  /** One draw. */
  sample(random: RandomBits): number {
    return this.#poisson.sample(random) - this.#poisson.sample(random)
  }

  /** Fills `out` with independent draws. */
  sampleInto(random: RandomBits, out: Int32Array | Float64Array): void {
    for (let i = 0; i < out.length; i++) out[i] = this.sample(random)
  }
}
