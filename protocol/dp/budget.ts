/**
 * Refusing a round that would overspend: DESIGN §3, "a round that would exceed the budget is
 * refused before it starts".
 */
import { HearthError } from '../errors.ts'
import { checkDelta, checkInteger, checkPositive } from './checks.ts'
import type { RdpAccountant } from './accountant.ts'
import type { EpsilonAndOrder } from './conversion.ts'
import type { PrivacyEvent } from './events.ts'

/** A model's privacy budget: the (ε, δ) its whole history may spend. */
export interface PrivacyBudget {
  readonly epsilon: number
  readonly delta: number
}

/**
 * The (ε, order) that `accountant` would report at the budget's δ after `count` more rounds
 * of `event`, leaving `accountant` unchanged.
 */
export function epsilonAfter(accountant: RdpAccountant, event: PrivacyEvent, count: number, delta: number): EpsilonAndOrder {
  checkInteger(count, 'count', 0)
  checkDelta(delta)
  return accountant.clone().compose(event, count).epsilonAndOrder(delta)
}

/**
 * Throws `HEARTH_ERR_PRIVACY_BUDGET_EXCEEDED` if `count` more rounds of `event` would take the
 * history in `accountant` past `budget`; otherwise returns the (ε, order) after them. Does not
 * compose: the caller composes once the round has really released its result.
 */
export function assertWithinBudget(accountant: RdpAccountant, event: PrivacyEvent, budget: PrivacyBudget, count = 1): EpsilonAndOrder {
  checkPositive(budget.epsilon, 'budget.epsilon')
  checkDelta(budget.delta, 'budget.delta')
  const after = epsilonAfter(accountant, event, count, budget.delta)
  if (after.epsilon > budget.epsilon) {
    throw new HearthError(
      'HEARTH_ERR_PRIVACY_BUDGET_EXCEEDED',
      `epsilon would reach ${after.epsilon.toPrecision(6)} (order ${after.order}) at delta ${budget.delta}, above the budget of ${budget.epsilon}`,
    )
  }
  return after
}
