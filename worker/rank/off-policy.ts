/**
 * Off-policy evaluation from the decision log: how a new model (or another exploration rate)
 * would have done on the rankings this device actually showed, without showing it.
 *
 * The unit is a logged slot (the item-position model of Li, Kim, Zitouni, "Offline Evaluation
 * of Ranking Policies with Click Models", KDD 2018): slot k of a decision, the item a the logging
 * policy put there given the items above, its propensity π₀(a) (logged), the target policy's
 * probability π₁(a) of the same choice given the same items above, and the reward r (1 when the
 * user engaged with a afterwards: an outcome of positive weight). With w = π₁(a)/π₀(a):
 *
 * - IPS (Horvitz & Thompson 1952): V̂ = (1/n) Σ w_i r_i, unbiased when π₀ > 0 wherever π₁ > 0;
 * - SNIPS (Swaminathan & Joachims, "The Self-Normalized Estimator for Counterfactual
 *   Learning", NeurIPS 2015, eq. 6): V̂ = Σ w_i r_i / Σ w_i, slightly biased, far lower variance;
 * - the effective sample size (Σ w)² / Σ w² (Kong 1992) says how many logged slots the estimate
 *   is really worth.
 */
import { EVENT_WEIGHTS } from '../../protocol/events.ts'
import type { DecisionRecord, ExplorationConfig } from '../../protocol/ranking.ts'

/** One logged slot, reweighted. */
export interface LoggedChoice {
  readonly reward: number
  /** π₀ of the logged choice. */
  readonly logging: number
  /** π₁ of the same choice. */
  readonly target: number
}

export interface OffPolicyEstimate {
  /** Logged slots used. */
  readonly samples: number
  readonly ips: number
  readonly snips: number
  /** Mean reward the logging policy obtained on the same slots. */
  readonly logged: number
  readonly effectiveSampleSize: number
}

/** IPS, SNIPS and the effective sample size of `choices` (see the module comment). */
export function estimateOffPolicy(choices: readonly LoggedChoice[]): OffPolicyEstimate {
  let weighted = 0
  let weights = 0
  let squares = 0
  let rewards = 0
  for (const { reward, logging, target } of choices) {
    if (!(logging > 0)) throw new RangeError('a logged propensity must be positive')
    const w = target / logging
    weighted += w * reward
    weights += w
    squares += w * w
    rewards += reward
  }
  const n = choices.length
  return {
    samples: n,
    ips: n === 0 ? 0 : weighted / n,
    snips: weights === 0 ? 0 : weighted / weights,
    logged: n === 0 ? 0 : rewards / n,
    effectiveSampleSize: squares === 0 ? 0 : (weights * weights) / squares,
  }
}

/** 1 when the user engaged with `item` after `decision` (an outcome of positive weight), else 0. */
export function rewardOf(decision: DecisionRecord, item: string): number {
  return decision.outcomes.some((o) => o.item === item && EVENT_WEIGHTS[o.kind] > 0) ? 1 : 0
}

/**
 * The target policy's probability of the logged choice at `slot` of `decision`, given the logged
 * items above it, for a policy ranking by `scores` (by candidate index) with exploration
 * `policy` (none: greedy; epsilon-greedy: exact). Ties go to the app's order, as in `rank()`.
 */
export function targetProbability(decision: DecisionRecord, slot: number, scores: ArrayLike<number>, policy: ExplorationConfig): number {
  const placed = new Set(decision.order.slice(0, slot))
  const chosen = decision.order[slot] as number
  let best = -1
  let remaining = 0
  for (let i = 0; i < decision.candidates.length; i++) {
    if (placed.has(i)) continue
    remaining++
    if (best < 0 || (scores[i] as number) > (scores[best] as number)) best = i
  }
  const greedy = chosen === best ? 1 : 0
  switch (policy.method) {
    case 'none':
      return greedy
    case 'epsilon-greedy':
      return (1 - policy.epsilon) * greedy + policy.epsilon / remaining
    case 'thompson':
      throw new RangeError('Thompson sampling has no closed-form propensities to evaluate as a target policy; use none or epsilon-greedy')
  }
}

/** The logged slots of `decisions` (the first `slots` of each), reweighted for the target policy. */
export function loggedChoices(decisions: readonly DecisionRecord[], targetScores: (decision: DecisionRecord) => ArrayLike<number>, policy: ExplorationConfig, slots: number): LoggedChoice[] {
  const out: LoggedChoice[] = []
  for (const decision of decisions) {
    const scores = targetScores(decision)
    const top = Math.min(slots, decision.order.length, decision.propensities.length)
    for (let k = 0; k < top; k++) {
      const chosen = decision.candidates[decision.order[k] as number]
      if (chosen === undefined) continue
      out.push({ reward: rewardOf(decision, chosen.item), logging: decision.propensities[k] as number, target: targetProbability(decision, k, scores, policy) })
    }
  }
  return out
}
