/**
 * HR@K and NDCG@K of the NCF protocol (He et al., WWW 2017, §4.1): each test item is ranked
 * among its 99 negatives; HR@K is the share of users whose test item is in the top K, and
 * NDCG@K = log 2 / log(rank + 2) for a hit at 0-based rank `rank` (0 otherwise), averaged.
 *
 * Ties are counted against the test item (its rank is the number of negatives scoring at least
 * as high): two items hashed into one bucket score the same, and a hit must not come from
 * listing order.
 */
import type { TestCase } from './quality-data.ts'

export interface RankingQuality {
  readonly hr: number
  readonly ndcg: number
  readonly users: number
}

/** The 0-based rank of `scores[0]` (the test item) among `scores[1..]`, ties against it. */
export function testRank(scores: ArrayLike<number>): number {
  const target = scores[0] as number
  let rank = 0
  for (let i = 1; i < scores.length; i++) if ((scores[i] as number) >= target) rank++
  return rank
}

/**
 * Averages HR@K and NDCG@K over `cases`. `score(case)` returns the scores of
 * `[case.item, ...case.negatives]`, in that order.
 */
export async function evaluate(cases: readonly TestCase[], score: (c: TestCase) => Promise<ArrayLike<number>> | ArrayLike<number>, k = 10): Promise<RankingQuality> {
  let hits = 0
  let ndcg = 0
  for (const c of cases) {
    const rank = testRank(await score(c))
    if (rank < k) {
      hits++
      ndcg += Math.LN2 / Math.log(rank + 2)
    }
  }
  return { hr: hits / Math.max(cases.length, 1), ndcg: ndcg / Math.max(cases.length, 1), users: cases.length }
}

/** ItemPop (NCF §4.1 baseline): items ranked by their number of training interactions. */
export function itemPopularity(train: readonly Int32Array[], items: number): Float64Array {
  const counts = new Float64Array(items)
  for (const history of train) for (const item of history) counts[item] = (counts[item] as number) + 1
  return counts
}
