/**
 * Cohort sampling.
 *
 * The sampler draws k = min(maxCohort, n) of the n sessions waiting when selection closes,
 * uniformly without replacement: every k-subset has probability 1 / C(n, k), so each waiting
 * session is selected with probability exactly k / n, independently of its identity, arrival
 * order or history. Randomness comes from the CSPRNG (`cryptoRandomInt`).
 *
 * For a privacy accountant this is sampling *without replacement* of a fixed-size cohort from
 * the sessions present, not Poisson sampling from the whole population. Amplification bounds
 * differ between the two (Balle, Barthe, Gaboardi, "Privacy Amplification by Subsampling: Tight
 * Analyses via Couplings and Divergences", NeurIPS 2018, treat them separately); the accountant
 * must use the without-replacement analysis with q = k / n, where n counts only the sessions
 * that were waiting; each round record keeps both (`eligible` = n, `participants` = k).
 */
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
