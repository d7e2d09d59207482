/**
 * Cohort sampling, and what the privacy accountant may assume about it.
 *
 * `uniform` (the default): k = min(maxCohort, n) of the n sessions waiting when selection closes,
 * uniformly without replacement — every k-subset has probability 1 / C(n, k), so each waiting
 * session is selected with probability exactly k / n, whatever its identity, arrival order or
 * history. Randomness comes from the CSPRNG (`cryptoRandomInt`).
 *
 * Amplification by subsampling needs the sample to be random among a fixed population known in
 * advance, and hidden from the adversary (Balle, Barthe, Gaboardi, "Privacy Amplification by
 * Subsampling: Tight Analyses via Couplings and Divergences", NeurIPS 2018). The waiting pool is
 * neither: n depends on who happens to be online (and so on the users themselves), and the
 * server sees it. So for `uniform` the accountant claims no amplification and charges every
 * round with q = 1, as if every user took part in every round.
 *
 * `poisson` (opt-in): each waiting session is selected independently with probability q, the
 * sampling that the analysis of the sampled Gaussian mechanism assumes (Mironov, Talwar, Zhang,
 * "Rényi Differential Privacy of the Sampled Gaussian Mechanism", 2019), and the accountant uses
 * that q. Bernoulli(q) is exact (see {@link bernoulli}) and the cohort is not capped: capping
 * would make one user's selection depend on the others'. The assumption, in plain words, is in
 * `aggregator/privacy/trust.ts`; each round record keeps n (`eligible`) and the cohort size.
 */
import { RandomBits } from '../../protocol/dp/sampling/random.ts'
import { cryptoRandomInt } from '../random.ts'
import type { RandomInt } from '../random.ts'

/**
 * A uniformly random k-subset of `items`, in random order: the first k steps of the
 * Fisher–Yates shuffle (Durstenfeld 1964; Knuth, TAOCP vol. 2, §3.4.2, Algorithm P).
 */
export function sampleWithoutReplacement<T>(items: readonly T[], k: number, random: RandomInt = cryptoRandomInt): T[] {
  const n = items.length
  if (!Number.isInteger(k) || k < 0 || k > n) throw new RangeError(`k must be an integer in [0, ${n}], got ${k}`)
  const pool = items.slice()
  for (let i = 0; i < k; i++) {
    const j = i + random(n - i)
    const picked = pool[j] as T
    pool[j] = pool[i] as T
    pool[i] = picked
  }
  return pool.slice(0, k)
}

/**
 * Poisson sampling: each of `items` is kept independently with probability `rate`, in order.
 *
 * @param rate - q in [0, 1].
 * @param random - fair bits; default the platform CSPRNG.
 */
export function samplePoisson<T>(items: readonly T[], rate: number, random: RandomBits = new RandomBits()): T[] {
  if (!(rate >= 0 && rate <= 1)) throw new RangeError(`rate must be in [0, 1], got ${rate}`)
  return items.filter(() => bernoulli(random, rate))
}

/**
 * Bernoulli(p), exactly, for a double p in [0, 1]: U < p for U uniform in [0, 1), comparing the
 * binary digits of U (fair bits, drawn lazily) with those of p; the first digit where they
 * differ decides. Doubling p and dropping its integer part is exact in binary floating point,
 * and a double has at most 1074 fractional digits, so the loop ends; it draws two bits on
 * average (Knuth and Yao's bit-comparison argument).
 */
export function bernoulli(random: RandomBits, p: number): boolean {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`p must be in [0, 1], got ${p}`)
  if (p === 1) return true
  let rest = p
  while (rest > 0) {
    rest *= 2
    const pDigit = rest >= 1
    if (pDigit) rest -= 1
    if (random.bit() !== pDigit) return pDigit // U's digit 0 where p's is 1: U < p
  }
  return false // p's remaining digits are all 0: U >= p
}
