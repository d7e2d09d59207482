/**
 * Exploration over a ranked list, with the propensity of every random choice.
 *
 * A ranking is built slot by slot: slot k is filled with one of the candidates not placed yet
 * (the remaining set R_k), drawn from a distribution π_k(· | R_k); the logged propensity of slot
 * k is π_k(chosen | R_k). Slots beyond `slots` take the rest in score order (propensity 1).
 * Each π_k sums to one over R_k, and the product of a ranking's propensities is its probability.
 *
 * - Epsilon-greedy (Sutton & Barto, Reinforcement Learning, 2nd ed. 2018, §2.2): with probability
 *   ε a uniform member of R_k, otherwise the best-scoring one, so
 *   π_k(best) = 1 − ε + ε/|R_k| and π_k(other) = ε/|R_k|.
 * - Thompson sampling (Thompson 1933; Chapelle & Li, NeurIPS 2011): the ranking is the order of
 *   scores under one draw of the user vector from its posterior (`posterior.ts`). π_k(i | R_k) is
 *   the probability that i scores highest within R_k under a draw; it has no closed form and is
 *   estimated as the share of M + 1 draws (M fresh ones and the one used) whose best remaining
 *   candidate is i. The estimate is never 0 for the chosen item, as IPS needs.
 *
 * An item is `explored` when it differs from the best-scoring member of R_k: the draw, not its
 * score, put it there.
 */
import type { UniformSource } from '../../protocol/model-spec.ts'
import { randomInt } from '../model/random.ts'

/** One filled slot. */
export interface Placement {
  /** Index into the candidates. */
  readonly index: number
  readonly propensity: number
  readonly explored: boolean
}

/** Candidate indices by score, highest first; ties keep the app's order (a stable sort). */
export function greedyOrder(scores: ArrayLike<number>): number[] {
  return Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => (scores[b] as number) - (scores[a] as number) || a - b)
}

/** π_k of epsilon-greedy over a remaining set of `remaining` items whose best is index 0. */
export function epsilonGreedyDistribution(remaining: number, epsilon: number): Float64Array {
  const out = new Float64Array(remaining).fill(epsilon / remaining)
  if (remaining > 0) out[0] = 1 - epsilon + epsilon / remaining
  return out
}

/** The whole ranking when nothing is random. */
export function greedyPlacements(order: readonly number[]): Placement[] {
  return order.map((index) => ({ index, propensity: 1, explored: false }))
}

/** Epsilon-greedy over the first `slots` positions of `order` (the greedy order). */
export function epsilonGreedyPlacements(order: readonly number[], epsilon: number, slots: number, uniform: UniformSource): Placement[] {
  const remaining = [...order]
  const out: Placement[] = []
  const top = Math.min(slots, order.length)
  for (let k = 0; k < top; k++) {
    const size = remaining.length
    const at = uniform() < epsilon ? randomInt(uniform, size) : 0
    const index = remaining[at] as number
    remaining.splice(at, 1)
    out.push({ index, propensity: at === 0 ? 1 - epsilon + epsilon / size : epsilon / size, explored: at !== 0 })
  }
  for (const index of remaining) out.push({ index, propensity: 1, explored: false })
  return out
}

/**
 * Thompson sampling placements from draws. `topByDraw[m]` lists, best first, at least
 * `slots + 1` candidate indices of draw m by that draw's scores; draw 0 is the one used.
 * `order` is the greedy order by mean score (it fills the positions after `slots`).
 */
export function thompsonPlacements(order: readonly number[], topByDraw: readonly Int32Array[], slots: number): Placement[] {
  const used = topByDraw[0]
  if (used === undefined) return greedyPlacements(order)
  const draws = topByDraw.length
  const top = Math.min(slots, order.length)
  const placed = new Set<number>()
  const out: Placement[] = []
  const firstFree = (ranked: Int32Array): number => {
    for (const index of ranked) if (!placed.has(index)) return index
    return -1
  }
  let greedyAt = 0
  for (let k = 0; k < top; k++) {
    const index = firstFree(used)
    if (index < 0) break
    let matches = 0
    for (const ranked of topByDraw) if (firstFree(ranked) === index) matches++
    while (placed.has(order[greedyAt] as number)) greedyAt++
    out.push({ index, propensity: matches / draws, explored: index !== order[greedyAt] })
    placed.add(index)
  }
  for (const index of order) if (!placed.has(index)) out.push({ index, propensity: 1, explored: false })
  return out
}

/**
 * π̂_k over the remaining set given the placed prefix: the share of draws whose best remaining
 * candidate is each index (a map index → probability; it sums to one).
 */
export function thompsonDistribution(topByDraw: readonly Int32Array[], placed: ReadonlySet<number>): Map<number, number> {
  const counts = new Map<number, number>()
  for (const ranked of topByDraw) {
    for (const index of ranked) {
      if (placed.has(index)) continue
      counts.set(index, (counts.get(index) ?? 0) + 1)
      break
    }
  }
  const total = [...counts.values()].reduce((a, b) => a + b, 0)
  return new Map([...counts].map(([index, count]) => [index, count / total]))
}
