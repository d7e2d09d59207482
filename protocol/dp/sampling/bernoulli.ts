/**
 * Exact Bernoulli samplers on rationals — the building blocks of Canonne, Kamath, Steinke,
 * "The Discrete Gaussian for Differential Privacy", NeurIPS 2020, arXiv:2004.00010 (CKS20) §5.
 * No floating point touches a probability: every decision is an integer comparison.
 */
import type { RandomBits } from './random.ts'

const SAFE = BigInt(Number.MAX_SAFE_INTEGER)

/** Bernoulli(num/den) exactly, for 0 <= num <= den, den >= 1 (safe integers). */
export function bernoulli(random: RandomBits, num: number, den: number): boolean {
  return random.below(den) < num
}

/** Bernoulli(num/den) exactly, for 0 <= num <= den, den >= 1 (bigints). */
export function bernoulliBig(random: RandomBits, num: bigint, den: bigint): boolean {
  if (den <= SAFE) return random.below(Number(den)) < Number(num)
  return random.belowBig(den) < num
}

/**
 * Bernoulli(exp(−num/den)) for 0 <= num/den <= 1 — CKS20 Algorithm 1, first part: draw
 * A_k ~ Bernoulli(γ/k) for k = 1, 2, … until one is 0; return 1 iff that k is odd.
 * P[K > k] = γ^k/k!, so P[K odd] = Σ_k (−γ)^k/k! = e^{−γ}.
 */
export function bernoulliExpNegAtMostOne(random: RandomBits, num: bigint, den: bigint): boolean {
  let k = 1n
  while (bernoulliBig(random, num, den * k)) k++
  return (k & 1n) === 1n
}

/** Bernoulli(exp(−1)): CKS20 Algorithm 1 with γ = 1, on numbers. */
export function bernoulliExpMinusOne(random: RandomBits): boolean {
  let k = 1
  while (random.below(k) === 0) k++ // Bernoulli(1/k)
  return (k & 1) === 1
}

/**
 * Bernoulli(exp(−num/den)) for any num/den >= 0 — CKS20 Algorithm 1: for γ > 1, ⌊γ⌋ draws of
 * Bernoulli(e^{−1}) (all must be 1) and one of Bernoulli(e^{−(γ − ⌊γ⌋)}).
 */
export function bernoulliExpNeg(random: RandomBits, num: bigint, den: bigint): boolean {
  if (num < 0n || den <= 0n) throw new RangeError(`bernoulliExpNeg needs num >= 0 and den > 0, got ${num}/${den}`)
  let n = num
  while (n > den) {
    if (!bernoulliExpMinusOne(random)) return false
    n -= den
  }
  return bernoulliExpNegAtMostOne(random, n, den)
}
