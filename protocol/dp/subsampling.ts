/**
 * Privacy amplification by Poisson subsampling for a mechanism known only through its RDP
 * curve at integer orders.
 *
 * Y. Zhu, Y.-X. Wang, "Poisson Subsampled Rényi Differential Privacy", ICML 2019 (ZW19),
 * Theorem 5 (the general upper bound): if M is (l, ε(l))-RDP for l = 2..α, then M on a
 * Poisson sample with rate γ is (α, ε'(α))-RDP for integer α >= 2 with
 *
 *   ε'(α) <= 1/(α−1) · log( (1−γ)^{α−1}(αγ − γ + 1) + C(α,2) γ² (1−γ)^{α−2} e^{ε(2)}
 *                          + 3 Σ_{l=3}^{α} C(α,l) (1−γ)^{α−l} γ^l e^{(l−1)ε(l)} ).
 *
 * Used as in KLS21's and AKL21's accounting code (google-research/federated,
 * distributed_dp/accounting_utils.py, `_compute_rdp_subsampled(upper_bound=True)`), and
 * capped by the unsampled ε(α): subsampling never hurts (quasi-convexity of the Rényi
 * divergence).
 */
import { logSumExp } from './log-math.ts'

/** ZW19 Thm 5 at one integer order α >= 2; `rdp(l)` is the unsampled RDP at order l. */
export function subsampledRdpUpperBound(alpha: number, samplingRate: number, rdp: (order: number) => number): number {
  if (!Number.isInteger(alpha) || alpha < 2) throw new RangeError(`alpha must be an integer >= 2, got ${alpha}`)
  if (!(samplingRate > 0 && samplingRate <= 1)) throw new RangeError(`samplingRate must be in (0, 1], got ${samplingRate}`)
  const unsampled = rdp(alpha)
  if (samplingRate === 1) return unsampled
  const g = samplingRate
  const logG = Math.log(g)
  const log1mg = Math.log1p(-g)
  const terms: number[] = []
  terms.push((alpha - 1) * log1mg + Math.log(alpha * g - g + 1))
  let logComb = Math.log((alpha * (alpha - 1)) / 2) // log C(α, 2)
  terms.push(logComb + 2 * logG + (alpha - 2) * log1mg + rdp(2))
  for (let l = 3; l <= alpha; l++) {
    logComb += Math.log((alpha - l + 1) / l)
    terms.push(Math.log(3) + logComb + l * logG + (alpha - l) * log1mg + (l - 1) * rdp(l))
  }
  return Math.min(logSumExp(terms) / (alpha - 1), unsampled)
}

/**
 * RDP at any order > 1 from an integer-order bound: RDP is non-decreasing in the order
 * (van Erven & Harremoës 2014, Thm 3), so ε(α) <= ε(⌈α⌉).
 */
export function atCeilingOrder(order: number, integerRdp: (order: number) => number): number {
  return integerRdp(Math.max(2, Math.ceil(order)))
}
