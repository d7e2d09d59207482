/**
 * From Rényi DP to (ε, δ)-DP.
 *
 * The improved conversion of C. Canonne, G. Kamath, T. Steinke, "The Discrete Gaussian for
 * Differential Privacy", NeurIPS 2020 (arXiv:2004.00010v4, Proposition 12; also Asoodeh et al.,
 * arXiv:2001.05990, Eq. 20): an (α, ρ)-RDP mechanism is (ε, δ)-DP with
 *
 *   ε = ρ + log1p(−1/α) − (log δ + log α)/(α − 1),
 *
 * tighter than the older ρ + log(1/δ)/(α − 1) (Mironov 2017, Prop. 3). As in dp_accounting's
 * `compute_epsilon`, orders α <= 1.01 are skipped (the bound is unstable there and never the
 * best), and when δ² > 1 − e^{−ρ} the KL bound δ <= sqrt(1 − e^{−KL}) already gives ε = 0.
 */
import { checkDelta, checkNonNegative } from './checks.ts'

/** The (ε, δ) guarantee read off an RDP curve, with the order that achieved it. */
export interface EpsilonAndOrder {
  /** ε >= 0 (+Infinity when no order gives a finite bound). */
  readonly epsilon: number
  /** The Rényi order α at which the minimum was reached. */
  readonly order: number
}

/** The (ε, δ) guarantee read off an RDP curve, with the order that achieved it. */
export interface DeltaAndOrder {
  /** δ in [0, 1]. */
  readonly delta: number
  /** The Rényi order α at which the minimum was reached. */
  readonly order: number
}

function checkCurve(orders: ArrayLike<number>, rdp: ArrayLike<number>): void {
  if (orders.length !== rdp.length) throw new RangeError(`orders and rdp must have the same length (${orders.length} vs ${rdp.length})`)
  if (orders.length === 0) throw new RangeError('orders must hold at least one order')
  for (let i = 0; i < orders.length; i++) {
    const a = orders[i] as number
    if (!(a > 1)) throw new RangeError(`orders must be > 1, got ${a}`)
    if (Number.isNaN(rdp[i] as number)) throw new RangeError(`rdp[${i}] is NaN`)
  }
}

/** ε at one order by CKS20 Prop. 12 (see the module note); +Infinity when unusable. */
export function epsilonAtOrder(order: number, rdp: number, delta: number): number {
  if (rdp < 0) return 0 // numerical noise from extreme events, as dp_accounting treats it
  if (delta * delta + Math.expm1(-rdp) > 0) return 0
  if (order > 1.01) return rdp + Math.log1p(-1 / order) - Math.log(delta * order) / (order - 1)
  return Infinity
}

/**
 * The smallest ε over the orders such that the composed mechanism is (ε, δ)-DP.
 *
 * @param orders - Rényi orders, each > 1.
 * @param rdp - the RDP ε(α) at each order (composition already applied).
 * @param delta - target δ in (0, 1).
 */
export function epsilonFromRdp(orders: ArrayLike<number>, rdp: ArrayLike<number>, delta: number): EpsilonAndOrder {
  checkDelta(delta)
  checkCurve(orders, rdp)
  let best = Infinity
  let bestOrder = orders[0] as number
  for (let i = 0; i < orders.length; i++) {
    const eps = epsilonAtOrder(orders[i] as number, rdp[i] as number, delta)
    if (eps < best) {
      best = eps
      bestOrder = orders[i] as number
    }
  }
  return { epsilon: Math.max(0, best), order: bestOrder }
}

/**
 * The smallest δ over the orders such that the composed mechanism is (ε, δ)-DP; the inverse
 * reading of CKS20 Prop. 12: log δ = (α−1)(ρ − ε + log1p(−1/α)) − log α, with the KL bound
 * δ <= sqrt(1 − e^{−ρ}) (dp_accounting `compute_delta`).
 *
 * @param orders - Rényi orders, each > 1.
 * @param rdp - the RDP ε(α) at each order.
 * @param epsilon - target ε >= 0.
 */
export function deltaFromRdp(orders: ArrayLike<number>, rdp: ArrayLike<number>, epsilon: number): DeltaAndOrder {
  checkNonNegative(epsilon, 'epsilon')
  checkCurve(orders, rdp)
  let best = Infinity
  let bestOrder = orders[0] as number
  for (let i = 0; i < orders.length; i++) {
    const a = orders[i] as number
    const r = rdp[i] as number
    let logDelta: number
    if (r < 0 || r === 0) logDelta = -Infinity
    else logDelta = 0.5 * Math.log1p(-Math.exp(-r))
    if (a > 1.01 && r >= 0) logDelta = Math.min(logDelta, (a - 1) * (r - epsilon + Math.log1p(-1 / a)) - Math.log(a))
    if (logDelta < best) {
      best = logDelta
      bestOrder = a
    }
  }
  return { delta: Math.min(Math.exp(best), 1), order: bestOrder }
}
