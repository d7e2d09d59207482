/**
 * Privacy events: what one round released, in the terms the accountant needs. A ledger keeps
 * these (plain JSON) and replays them into an `RdpAccountant`.
 */
import type { DistributedDiscreteGaussianParams, SkellamParams } from './distributed.ts'

/** Central DP: Poisson sampling at rate q, Gaussian noise N(0, (z·C)²) on the sum (MTZ19). */
export interface SampledGaussianEvent {
  readonly kind: 'sampled-gaussian'
  /** q in [0, 1]: the probability that a given user takes part in the round. */
  readonly samplingRate: number
  /** z >= 0: noise standard deviation over the L2 clipping norm. */
  readonly noiseMultiplier: number
}

/** Distributed DP with discrete Gaussian shares (KLS21), Poisson sampling at rate q. */
export interface SampledDistributedDiscreteGaussianEvent extends DistributedDiscreteGaussianParams {
  readonly kind: 'sampled-distributed-discrete-gaussian'
  readonly samplingRate: number
}

/** Distributed DP with Skellam shares (AKL21), Poisson sampling at rate q. */
export interface SampledSkellamEvent extends SkellamParams {
  readonly kind: 'sampled-skellam'
  readonly samplingRate: number
}

/** One round's privacy event. */
export type PrivacyEvent = SampledGaussianEvent | SampledDistributedDiscreteGaussianEvent | SampledSkellamEvent

/** A stable string naming the event's parameters, for caching its RDP curve. */
export function eventKey(event: PrivacyEvent): string {
  switch (event.kind) {
    case 'sampled-gaussian':
      return `g|${event.samplingRate}|${event.noiseMultiplier}`
    case 'sampled-distributed-discrete-gaussian':
      return `ddg|${event.samplingRate}|${event.l2Sensitivity}|${event.l1Sensitivity ?? ''}|${event.localSigma}|${event.noisyClients}|${event.dim}`
    case 'sampled-skellam':
      return `sk|${event.samplingRate}|${event.l2Sensitivity}|${event.l1Sensitivity ?? ''}|${event.variance}|${event.dim}`
  }
}
