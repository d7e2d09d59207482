/**
 * Accounting for distributed DP: every client adds a share of discrete noise to its
 * clipped, scaled, rounded update before secure aggregation, so the server only sees the
 * noised sum. All quantities here are in the scaled integer domain (after multiplying by the
 * scale s and rounding), where the secure sum lives.
 *
 * - Distributed discrete Gaussian: P. Kairouz, Z. Liu, T. Steinke, "The Distributed Discrete
 *   Gaussian Mechanism for Federated Learning with Secure Aggregation", ICML 2021,
 *   arXiv:2102.06387 (KLS21). The sum of n draws of N_Z(0, σ²) is not a discrete Gaussian but
 *   is close to N_Z(0, nσ²); Theorem 1 bounds the privacy loss with the term
 *   τ = 10 · Σ_{k=1}^{n−1} exp(−2π²σ² · k/(k+1)), and Proposition 14 (Eq. 17) gives the RDP
 *   at order α as the minimum of three expressions (see `distributedDiscreteGaussianRdp`).
 * - Distributed Skellam: N. Agarwal, P. Kairouz, Z. Liu, "The Skellam Mechanism for
 *   Differentially Private Federated Learning", NeurIPS 2021, arXiv:2110.04995 (AKL21), §3:
 *   Skellam noise is closed under summation, so n shares of variance v sum to Skellam of
 *   variance nv, whose RDP bound is in `skellamRdp`.
 * - Rounding inflation (KLS21 §4.1, conditional randomized rounding) in `roundedL2NormBound`.
 *
 * Formulas were checked against the authors' code (google-research/federated,
 * distributed_dp/accounting_utils.py). Theorem numbers refer to the arXiv versions above.
 *
 * Dropouts and trust: the noise that protects a user is the noise of the *other* clients whose
 * shares are in the sum and are not known to the adversary. `noisyClients` below must be a
 * lower bound on that number — the minimum number of survivors the round accepts, minus one
 * (the user being protected), minus the clients that may collude with the server. More shares
 * only add independent noise, which cannot hurt (post-processing).
 */
import { checkFinite, checkInteger, checkNonNegative, checkPositive, checkRange } from './checks.ts'
import { atCeilingOrder, subsampledRdpUpperBound } from './subsampling.ts'

/**
 * L2 norm bound after rounding each coordinate to an integer (KLS21 §4.1).
 *
 * beta = 0 (unconditional randomized rounding): every coordinate moves by less than 1, so the
 * norm grows by less than √d: Δ + √d. With conditional randomized rounding at bias β in (0, 1)
 * (retry until the rounded norm is below the bound; KLS21 Prop. 22 / Theorem 23):
 * min(Δ + √d, sqrt(Δ² + d/4 + sqrt(2 ln(1/β)) (Δ + √d/2))).
 *
 * @param l2Bound - the L2 norm bound of the scaled vector before rounding (> 0).
 * @param dim - the number of coordinates d (integer >= 1).
 * @param beta - the conditional rounding bias in [0, 1); 0 for plain randomized rounding.
 */
export function roundedL2NormBound(l2Bound: number, dim: number, beta = 0): number {
  checkPositive(l2Bound, 'l2Bound')
  checkInteger(dim, 'dim', 1)
  checkFinite(beta, 'beta')
  if (!(beta >= 0 && beta < 1)) throw new RangeError(`beta must be in [0, 1), got ${beta}`)
  const bound1 = l2Bound + Math.sqrt(dim)
  if (beta === 0) return bound1
  const squared = l2Bound * l2Bound + 0.25 * dim + Math.sqrt(2 * Math.log(1 / beta)) * (l2Bound + 0.5 * Math.sqrt(dim))
  return Math.min(bound1, Math.sqrt(squared))
}

/**
 * L1 norm bound of an integer vector of L2 norm at most `l2Bound`: ||x||₁ <= √d·||x||₂ always,
 * and ||x||₁ <= ||x||₂² for integer coordinates (|x_i| <= x_i²) (KLS21 §4; AKL21 §4).
 */
export function roundedL1NormBound(l2Bound: number, dim: number): number {
  checkPositive(l2Bound, 'l2Bound')
  checkInteger(dim, 'dim', 1)
  return l2Bound * Math.min(Math.sqrt(dim), l2Bound)
}

/**
 * KLS21 Theorem 1: τ = 10 · Σ_{k=1}^{n−1} exp(−2π²σ² · k/(k+1)), the distance of a sum of n
 * discrete Gaussians N_Z(0, σ²) from a discrete Gaussian. Negligible once σ >= 1 or so.
 *
 * @param localSigma - σ of each client's share, in integer units (>= 1/2, as the theorem asks).
 * @param clients - n, the number of shares summed (>= 1).
 */
export function distributedDiscreteGaussianTau(localSigma: number, clients: number): number {
  checkFinite(localSigma, 'localSigma')
  if (!(localSigma >= 0.5)) throw new RangeError(`localSigma must be >= 1/2 (KLS21 Theorem 1), got ${localSigma}`)
  checkInteger(clients, 'clients', 1)
  const c = 2 * Math.PI * Math.PI * localSigma * localSigma
  let sum = 0
  for (let k = 1; k < clients; k++) {
    const term = Math.exp((-c * k) / (k + 1))
    sum += term
    if (term === 0) break // later terms are smaller still: k/(k+1) grows
  }
  return 10 * sum
}

/** Parameters of the distributed discrete Gaussian in the scaled integer domain. */
export interface DistributedDiscreteGaussianParams {
  /** L2 sensitivity of one user's rounded, scaled contribution (e.g. `roundedL2NormBound`). */
  readonly l2Sensitivity: number
  /** L1 sensitivity; defaults to `roundedL1NormBound(l2Sensitivity, dim)`. */
  readonly l1Sensitivity?: number
  /** σ of each client's share N_Z(0, σ²), integer units, >= 1/2. */
  readonly localSigma: number
  /** n: the guaranteed number of noise shares in the sum (see the module note on dropouts). */
  readonly noisyClients: number
  /** d: the number of coordinates. */
  readonly dim: number
}

function checkDdg(p: DistributedDiscreteGaussianParams): void {
  checkPositive(p.l2Sensitivity, 'l2Sensitivity')
  if (p.l1Sensitivity !== undefined) checkPositive(p.l1Sensitivity, 'l1Sensitivity')
  checkFinite(p.localSigma, 'localSigma')
  checkInteger(p.noisyClients, 'noisyClients', 1)
  checkInteger(p.dim, 'dim', 1)
}

/**
 * RDP at order α > 1 of one release of the sum of `noisyClients` discrete Gaussian shares
 * (KLS21 Proposition 14, Eq. 17, with τ from Theorem 1), no sampling:
 *
 *   ε(α) = min( α/2 · Δ₂²/(nσ²) + τd,
 *               α/2 · (Δ₂²/(nσ²) + 2τΔ₁/(√n σ) + τ²d),
 *               α/2 · (Δ₂/(√n σ) + τ√d)² ).
 */
export function distributedDiscreteGaussianRdp(params: DistributedDiscreteGaussianParams, order: number): number {
  checkDdg(params)
  if (!(order > 1)) throw new RangeError(`order must be > 1, got ${order}`)
  const { localSigma: sigma, noisyClients: n, dim: d } = params
  const tau = distributedDiscreteGaussianTau(sigma, n)
  const l1 = params.l1Sensitivity ?? roundedL1NormBound(params.l2Sensitivity, d)
  const l2Scale = params.l2Sensitivity / (Math.sqrt(n) * sigma)
  const l1Scale = l1 / (Math.sqrt(n) * sigma)
  const a = order
  const t1 = (a / 2) * l2Scale * l2Scale + tau * d
  const t2 = (a / 2) * (l2Scale * l2Scale + 2 * l1Scale * tau + tau * tau * d)
  const t3 = (a / 2) * (l2Scale + Math.sqrt(d) * tau) ** 2
  return Math.min(t1, t2, t3)
}

/** Parameters of the distributed Skellam mechanism in the scaled integer domain. */
export interface SkellamParams {
  /** L2 sensitivity of one user's rounded, scaled contribution. */
  readonly l2Sensitivity: number
  /** L1 sensitivity; defaults to `roundedL1NormBound(l2Sensitivity, dim)`. */
  readonly l1Sensitivity?: number
  /** Variance of the summed Skellam noise per coordinate: noisyClients × each share's variance. */
  readonly variance: number
  /** d: the number of coordinates (for the default L1 bound). */
  readonly dim: number
}

/**
 * RDP at order α > 1 of the multi-dimensional Skellam mechanism with per-coordinate noise
 * Sk(μ/2, μ/2) (variance μ) in integer units (AKL21 §3, the RDP bound of the Skellam
 * mechanism, in the form of the authors' `_skellam_rdp` with scale 1):
 *
 *   ε(α) = α Δ₂²/(2μ) + min( ((2α − 1) Δ₂² + 6 Δ₁)/(4μ²), 3 Δ₁/(2μ) ).
 */
export function skellamRdp(params: SkellamParams, order: number): number {
  checkPositive(params.l2Sensitivity, 'l2Sensitivity')
  if (params.l1Sensitivity !== undefined) checkPositive(params.l1Sensitivity, 'l1Sensitivity')
  checkPositive(params.variance, 'variance')
  checkInteger(params.dim, 'dim', 1)
  if (!(order > 1)) throw new RangeError(`order must be > 1, got ${order}`)
  const mu = params.variance
  const l2 = params.l2Sensitivity
  const l1 = params.l1Sensitivity ?? roundedL1NormBound(l2, params.dim)
  const a = order
  return (a * l2 * l2) / (2 * mu) + Math.min(((2 * a - 1) * l2 * l2 + 6 * l1) / (4 * mu * mu), (3 * l1) / (2 * mu))
}

/**
 * RDP of one round with Poisson sampling at rate q, at each order: ZW19 Theorem 5 over the
 * integer orders (see subsampling.ts), and ε(⌈α⌉) at fractional orders (RDP is monotone).
 */
export function subsampledIntegerOrderRdp(samplingRate: number, orders: readonly number[], rdp: (order: number) => number): Float64Array {
  checkRange(samplingRate, 'samplingRate', 0, 1)
  const out = new Float64Array(orders.length)
  if (samplingRate === 0) return out
  const cache = new Map<number, number>()
  const unsampled = (l: number): number => {
    let v = cache.get(l)
    if (v === undefined) {
      v = rdp(l)
      cache.set(l, v)
    }
    return v
  }
  const sampled = new Map<number, number>()
  for (let k = 0; k < orders.length; k++) {
    out[k] = atCeilingOrder(orders[k] as number, (alpha) => {
      let v = sampled.get(alpha)
      if (v === undefined) {
        v = subsampledRdpUpperBound(alpha, samplingRate, unsampled)
        sampled.set(alpha, v)
      }
      return v
    })
  }
  return out
}

/** Checks `variance` > 0 etc. for callers that build Skellam parameters from shares. */
export function skellamVarianceOfSum(localVariance: number, noisyClients: number): number {
  checkNonNegative(localVariance, 'localVariance')
  checkInteger(noisyClients, 'noisyClients', 1)
  return localVariance * noisyClients
}
