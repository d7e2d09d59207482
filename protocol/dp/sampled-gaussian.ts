/**
 * Rényi DP of the Poisson-subsampled Gaussian mechanism (the "sampled Gaussian mechanism").
 *
 * Source: I. Mironov, K. Talwar, L. Zhang, "Rényi Differential Privacy of the Sampled Gaussian
 * Mechanism", arXiv:1908.10530 (2019) — MTZ19 below. Each user is included independently with
 * probability q; the included users' clipped contributions are summed and N(0, (z·C)²) noise is
 * added per coordinate (sensitivity C, noise multiplier z). For the add/remove-one relation the
 * RDP at order α is ε(α) = log(A_α) / (α − 1) with (MTZ19 §3, Eq. for A_α)
 *
 *   A_α = E_{x~μ0}[(μ(x)/μ0(x))^α],  μ0 = N(0, z²),  μ = (1 − q)·μ0 + q·N(1, z²).
 *
 * Integer α: the binomial expansion A_α = Σ_{i=0}^{α} C(α,i) (1−q)^{α−i} q^i e^{(i²−i)/(2z²)}
 * (MTZ19 §3.2), summed in log space. Fractional α: the two-sided series of MTZ19 §3.3, the split
 * point z0 = z²·log(1/q − 1) + 1/2 with erfc weights. The numerical recipe (term order, stopping
 * rule, 1000-term cap, |C(α,i)| for fractional α) follows dp_accounting's `_compute_log_a_int`
 * and `_compute_log_a_frac` (google/differential-privacy, python/dp_accounting/rdp/
 * rdp_privacy_accountant.py) so that the numbers agree with that accountant; the code is ours.
 */
import { checkOrders } from './orders.ts'
import { checkRange, checkNonNegative } from './checks.ts'
import { logAdd, logErfc } from './log-math.ts'

/** MTZ19 §3.2: log(A_α) for integer α >= 2 and 0 < q < 1, exact binomial expansion in log space. */
export function logAInteger(q: number, sigma: number, alpha: number): number {
  const logQ = Math.log(q)
  const log1mq = Math.log1p(-q)
  const twoSigma2 = 2 * sigma * sigma
  // Terms t_i = log C(α,i) + i log q + (α−i) log(1−q) + (i²−i)/(2σ²); log-sum-exp with the max out.
  const terms = new Float64Array(alpha + 1)
  let logComb = 0
  let max = -Infinity
  for (let i = 0; i <= alpha; i++) {
    if (i > 0) logComb += Math.log((alpha - i + 1) / i)
    const t = logComb + i * logQ + (alpha - i) * log1mq + (i * i - i) / twoSigma2
    terms[i] = t
    if (t > max) max = t
  }
  let sum = 0
  for (let i = 0; i <= alpha; i++) sum += Math.exp((terms[i] as number) - max)
  return max + Math.log(sum)
}

/** The series cap of dp_accounting's `_MAX_STEPS_LOG_A_FRAC`; past it the order is dropped. */
const MAX_FRACTIONAL_TERMS = 1000

/**
 * MTZ19 §3.3: log(A_α) for fractional α > 1 and 0 < q < 1. A_α = A0 + A1, the integrals of the
 * expansion over (−∞, z0] and [z0, ∞):
 *   A0 = Σ_i C(α,i) q^i (1−q)^{α−i} e^{(i²−i)/(2σ²)} · ½ erfc((i − z0)/(√2 σ))
 *   A1 = Σ_i C(α,i) q^{α−i} (1−q)^i e^{(j²−j)/(2σ²)} · ½ erfc((z0 − j)/(√2 σ)),  j = α − i.
 * As in dp_accounting, |C(α,i)| is used (a term-wise upper bound: the sum can only grow), and
 * the series stops once both parts decrease and the last terms are below e^{−30} of the total.
 * Returns +Infinity when 1000 terms do not converge (the order is then useless, not wrong).
 */
export function logAFractional(q: number, sigma: number, alpha: number): number {
  const logQ = Math.log(q)
  const log1mq = Math.log1p(-q)
  const sigma2 = sigma * sigma
  const z0 = sigma2 * Math.log(1 / q - 1) + 0.5
  const sqrt2Sigma = Math.SQRT2 * sigma
  let logA0 = -Infinity
  let logA1 = -Infinity
  let lastS0 = -Infinity
  let lastS1 = -Infinity
  let logComb = 0 // log |C(α, i)|, by C(α,i) = C(α,i−1)·(α−i+1)/i
  for (let i = 0; i < MAX_FRACTIONAL_TERMS; i++) {
    if (i > 0) logComb += Math.log(Math.abs(alpha - i + 1) / i)
    const j = alpha - i
    const logT0 = logComb + i * logQ + j * log1mq
    const logT1 = logComb + j * logQ + i * log1mq
    const logE0 = Math.log(0.5) + logErfc((i - z0) / sqrt2Sigma)
    const logE1 = Math.log(0.5) + logErfc((z0 - j) / sqrt2Sigma)
    const logS0 = logT0 + (i * i - i) / (2 * sigma2) + logE0
    const logS1 = logT1 + (j * j - j) / (2 * sigma2) + logE1
    logA0 = logAdd(logA0, logS0)
    logA1 = logAdd(logA1, logS1)
    const total = logAdd(logA0, logA1)
    if (logS0 < lastS0 && logS1 < lastS1 && Math.max(logS0, logS1) < total - 30) return total
    lastS0 = logS0
    lastS1 = logS1
  }
  return Infinity
}

/**
 * RDP ε(α) of one round of the Poisson-subsampled Gaussian mechanism at one order.
 *
 * @param samplingRate - q in [0, 1], the probability that a user takes part in the round.
 * @param noiseMultiplier - z >= 0, noise standard deviation over the L2 sensitivity.
 * @param order - α > 1.
 * @returns ε(α) >= 0, or +Infinity (z = 0, or a fractional series that did not converge).
 */
export function sampledGaussianRdpAtOrder(samplingRate: number, noiseMultiplier: number, order: number): number {
  const q = samplingRate
  const z = noiseMultiplier
  if (q === 0) return 0
  if (z === 0) return Infinity
  // q = 1: the Gaussian mechanism itself, RDP α/(2z²) exactly (Mironov 2017, Prop. 7).
  if (q === 1) return order / (2 * z * z)
  const logA = Number.isInteger(order) ? logAInteger(q, z, order) : logAFractional(q, z, order)
  return logA / (order - 1)
}

/**
 * RDP of one round of the Poisson-subsampled Gaussian mechanism at each order (MTZ19).
 *
 * @param samplingRate - q in [0, 1].
 * @param noiseMultiplier - z >= 0 (0 means no noise: infinite RDP unless q = 0).
 * @param orders - Rényi orders α > 1.
 * @returns ε(α) per order, same length as `orders`.
 */
export function sampledGaussianRdp(samplingRate: number, noiseMultiplier: number, orders: readonly number[]): Float64Array {
  checkRange(samplingRate, 'samplingRate', 0, 1)
  checkNonNegative(noiseMultiplier, 'noiseMultiplier')
  checkOrders(orders)
  const out = new Float64Array(orders.length)
  for (let k = 0; k < orders.length; k++) out[k] = sampledGaussianRdpAtOrder(samplingRate, noiseMultiplier, orders[k] as number)
  return out
}
