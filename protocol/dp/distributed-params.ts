/**
 * Choosing the scale for distributed DP so that the secure sum of n clients does not wrap
 * around the modulus 2^bits (KLS21 §4 "modular clipping"; the role of `_heuristic_scale_factor`
 * in TFF's `DistributedDpSumFactory`, tensorflow_federated/python/aggregators/distributed_dp.py).
 *
 * Pipeline per client (DESIGN §3 `distributed`): clip to L2 norm C → multiply by the scale s →
 * randomized rounding to integers → add a noise share → secure sum mod 2^bits, read back as a
 * signed value in [−2^{bits−1}, 2^{bits−1}). The sum of a coordinate is
 * signal + noise with
 * - signal: 'worst-case' bound (default, no assumption): each rounded coordinate is at most
 *   s·C + 1 in magnitude, so at most maxClients·(s·C + 1); 'rotated' (TFF's heuristic, KLS21
 *   §4.2/4.4): after a random rotation coordinates are subgaussian with variance
 *   ρ/d·(C·n)² + n/4 (scaled units, ρ = 1), bounded at k standard deviations;
 * - noise: the sum of up to maxClients shares (all survivors add noise), bounded with
 *   probability 1 − wrapProbability per coordinate by a tail bound: subgaussian for the
 *   discrete Gaussian (N_Z(0, σ²) is σ²-subgaussian, CKS20 Cor. 9), Bennett's inequality for
 *   Skellam (log E e^{λS} = V(cosh λ − 1) <= V(e^λ − 1 − λ), the Poisson case).
 * So "cannot wrap" holds for the signal always and for the noise except with probability
 * `wrapProbability` per coordinate (noise is unbounded; no scale removes that).
 *
 * Noise is sized for the minimum: each share has variance (z·C·s)²/noisyClients, so with
 * exactly `noisyClients` shares the central noise is z·C (in original units) and with more
 * survivors it is larger (dropouts can only remove shares down to that minimum).
 */
import { checkInteger, checkPositive, checkRange } from './checks.ts'
import { roundedL1NormBound, roundedL2NormBound } from './distributed.ts'
import type { SampledDistributedDiscreteGaussianEvent, SampledSkellamEvent } from './events.ts'
import { logErfc } from './log-math.ts'

/** The inputs of the plan. Lengths are L2 norms in the model's units. */
export interface DistributedDpConfig {
  readonly mechanism: 'discrete-gaussian' | 'skellam'
  /** Bits of the secure-sum modulus, 2..32 (Hearth's vectors are Uint32Array). */
  readonly bits: number
  /** The most clients whose vectors can be in one sum (the cohort size). */
  readonly maxClients: number
  /**
   * The fewest noise shares that protect a user: the minimum survivors the round accepts,
   * minus 1 (the user), minus the clients that may collude with the server.
   */
  readonly noisyClients: number
  /** C: the L2 clipping norm. */
  readonly clipNorm: number
  /** d: the number of coordinates. */
  readonly dim: number
  /** z: the central noise standard deviation over C with exactly `noisyClients` shares. */
  readonly noiseMultiplier: number
  /** Per-coordinate probability that the noise alone pushes the sum out of range; default 1e-9. */
  readonly wrapProbability?: number
  /** How to bound the signal part: 'worst-case' (default) or TFF's 'rotated' heuristic. */
  readonly signalBound?: 'worst-case' | 'rotated'
  /** Conditional randomized rounding bias β in [0, 1) (KLS21 §4.1); default 0. */
  readonly beta?: number
  /** Upper limit on the scale (TFF caps at 1e6); keeps Skellam sampling cheap. Default 2^24. */
  readonly maxScale?: number
}

/** The chosen parameters, in the scaled integer domain unless said otherwise. */
export interface DistributedDpPlan {
  readonly mechanism: 'discrete-gaussian' | 'skellam'
  readonly bits: number
  /** s: multiply clipped values by this before rounding. */
  readonly scale: number
  /** Each client's noise share: N_Z(0, localSigma²) or Skellam of variance localSigma². */
  readonly localSigma: number
  readonly localVariance: number
  /** L2 sensitivity after scaling and rounding (KLS21 §4.1). */
  readonly l2Sensitivity: number
  /** L1 sensitivity bound (integer vectors). */
  readonly l1Sensitivity: number
  /** Bounds on |signal| and |noise| of one coordinate of the sum; their sum is < 2^{bits−1}. */
  readonly signalBound: number
  readonly noiseBound: number
  readonly noisyClients: number
  readonly dim: number
  /** The effective central noise multiplier after rounding: √noisyClients·localSigma / l2Sensitivity. */
  readonly effectiveNoiseMultiplier: number
}

/** Bennett: the t with 2·exp(−V·h(t/V)) = p, h(u) = (1+u)log(1+u) − u, by bisection. */
function skellamTail(variance: number, p: number): number {
  const target = Math.log(2 / p)
  const h = (u: number): number => (1 + u) * Math.log1p(u) - u
  let lo = 0
  let hi = Math.sqrt(2 * variance * target) + 2 * target + 1
  while (variance * h(hi / variance) < target) hi *= 2
  for (let i = 0; i < 200 && hi - lo > 1e-9 * hi; i++) {
    const mid = (lo + hi) / 2
    if (variance * h(mid / variance) >= target) hi = mid
    else lo = mid
  }
  return hi
}

/** k with erfc(k/√2) = p: the two-sided normal quantile (for the 'rotated' heuristic). */
function normalTwoSidedQuantile(p: number): number {
  let lo = 0
  let hi = 40
  const target = Math.log(p)
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2
    if (logErfc(mid / Math.SQRT2) > target) lo = mid
    else hi = mid
  }
  return hi
}

/**
 * Plans scale, noise share and sensitivities for distributed DP (see the module note).
 *
 * @throws RangeError when the bits cannot hold maxClients values with the asked noise.
 */
export function planDistributedDp(config: DistributedDpConfig): DistributedDpPlan {
  const { mechanism, bits, maxClients, noisyClients, clipNorm, dim, noiseMultiplier: z } = config
  if (mechanism !== 'discrete-gaussian' && mechanism !== 'skellam') throw new RangeError(`mechanism must be 'discrete-gaussian' or 'skellam', got ${String(mechanism)}`)
  checkInteger(bits, 'bits', 2, 32)
  checkInteger(maxClients, 'maxClients', 1)
  checkInteger(noisyClients, 'noisyClients', 1, maxClients)
  checkPositive(clipNorm, 'clipNorm')
  checkInteger(dim, 'dim', 1)
  checkPositive(z, 'noiseMultiplier')
  const p = config.wrapProbability ?? 1e-9
  checkRange(p, 'wrapProbability', Number.MIN_VALUE, 0.5)
  const beta = config.beta ?? 0
  const maxScale = config.maxScale ?? 2 ** 24
  checkPositive(maxScale, 'maxScale')
  const signalMode = config.signalBound ?? 'worst-case'
  const half = 2 ** (bits - 1) - 1
  const n = maxClients
  // Noise std per share, per unit of scale: z·C/√noisyClients.
  const shareStdPerScale = (z * clipNorm) / Math.sqrt(noisyClients)

  const noiseBoundAt = (s: number): number => {
    const variance = n * (s * shareStdPerScale) ** 2
    return mechanism === 'discrete-gaussian' ? Math.sqrt(2 * variance * Math.log(2 / p)) : skellamTail(variance, p)
  }
  const signalBoundAt = (s: number): number => {
    if (signalMode === 'worst-case') return n * (s * clipNorm + 1)
    const k = normalTwoSidedQuantile(p)
    return k * Math.sqrt((1 / dim) * (clipNorm * s * n) ** 2 + n / 4)
  }
  const fits = (s: number): boolean => signalBoundAt(s) + noiseBoundAt(s) <= half
  if (!fits(0)) {
    throw new RangeError(`bits (${bits}) cannot hold the rounding of ${maxClients} clients; use more bits or fewer clients`)
  }
  // Largest s that fits: both bounds grow with s. Bisection on [0, hi].
  let lo = 0
  let hi = 1
  while (fits(hi) && hi < maxScale) hi *= 2
  if (fits(hi)) lo = hi
  else {
    for (let i = 0; i < 200 && hi - lo > 1e-12 * hi; i++) {
      const mid = (lo + hi) / 2
      if (fits(mid)) lo = mid
      else hi = mid
    }
  }
  const scale = Math.min(lo, maxScale)
  if (!(scale > 0)) throw new RangeError(`bits (${bits}) leave no room for any signal with ${maxClients} clients`)
  const localSigma = scale * shareStdPerScale
  if (mechanism === 'discrete-gaussian' && localSigma < 0.5) {
    throw new RangeError(`the noise share sigma ${localSigma} is below 1/2 (KLS21 Theorem 1); use more bits or fewer noisyClients`)
  }
  const l2Sensitivity = roundedL2NormBound(scale * clipNorm, dim, beta)
  const l1Sensitivity = roundedL1NormBound(l2Sensitivity, dim)
  return {
    mechanism,
    bits,
    scale,
    localSigma,
    localVariance: localSigma * localSigma,
    l2Sensitivity,
    l1Sensitivity,
    signalBound: signalBoundAt(scale),
    noiseBound: noiseBoundAt(scale),
    noisyClients,
    dim,
    effectiveNoiseMultiplier: (Math.sqrt(noisyClients) * localSigma) / l2Sensitivity,
  }
}

/** The accountant's event for one round run with `plan` at Poisson sampling rate q. */
export function distributedDpEvent(plan: DistributedDpPlan, samplingRate: number): SampledDistributedDiscreteGaussianEvent | SampledSkellamEvent {
  checkRange(samplingRate, 'samplingRate', 0, 1)
  if (plan.mechanism === 'discrete-gaussian') {
    return {
      kind: 'sampled-distributed-discrete-gaussian',
      samplingRate,
      l2Sensitivity: plan.l2Sensitivity,
      l1Sensitivity: plan.l1Sensitivity,
      localSigma: plan.localSigma,
      noisyClients: plan.noisyClients,
      dim: plan.dim,
    }
  }
  return {
    kind: 'sampled-skellam',
    samplingRate,
    l2Sensitivity: plan.l2Sensitivity,
    l1Sensitivity: plan.l1Sensitivity,
    variance: plan.noisyClients * plan.localVariance,
    dim: plan.dim,
  }
}
