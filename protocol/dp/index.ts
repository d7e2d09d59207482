/**
 * Differential privacy for Hearth: the Rényi DP accountant (central and distributed DP), the
 * budget check, and exact noise samplers. Pure TypeScript; randomness from WebCrypto.
 *
 * Sources, cited at each formula: MTZ19 (sampled Gaussian RDP), CKS20 (discrete Gaussian,
 * RDP→(ε, δ) conversion), ZW19 (Poisson subsampling, general bound), KLS21 (distributed
 * discrete Gaussian), AKL21 (Skellam), Mironov 2012 (floating-point attacks).
 */
export { DEFAULT_RDP_ORDERS } from './orders.ts'
export { sampledGaussianRdp, sampledGaussianRdpAtOrder } from './sampled-gaussian.ts'
export { epsilonFromRdp, deltaFromRdp, type EpsilonAndOrder, type DeltaAndOrder } from './conversion.ts'
export type { PrivacyEvent, SampledGaussianEvent, SampledDistributedDiscreteGaussianEvent, SampledSkellamEvent } from './events.ts'
export {
  RdpAccountant,
  eventRdp,
  sampledGaussianEpsilon,
  noiseMultiplierForEpsilon,
  type SampledGaussianQuery,
  type NoiseMultiplierQuery,
  type NoiseMultiplierResult,
} from './accountant.ts'
export { assertWithinBudget, epsilonAfter, type PrivacyBudget } from './budget.ts'
export {
  roundedL2NormBound,
  roundedL1NormBound,
  distributedDiscreteGaussianTau,
  distributedDiscreteGaussianRdp,
  skellamRdp,
  type DistributedDiscreteGaussianParams,
  type SkellamParams,
} from './distributed.ts'
export { planDistributedDp, distributedDpEvent, type DistributedDpConfig, type DistributedDpPlan } from './distributed-params.ts'
export { RandomBits, cryptoRandomSource, seededRandomSource, type RandomSource } from './sampling/random.ts'
export { DiscreteGaussianSampler, sampleDiscreteGaussian, sampleDiscreteLaplace } from './sampling/discrete-gaussian.ts'
export { PoissonSampler, SkellamSampler } from './sampling/poisson.ts'
export { gridGaussianNoise, sampleContinuousGaussian, type GridGaussianInfo } from './sampling/gaussian.ts'
export { encodeNoisedShare, centredSum, type DistributedEncoding } from './distributed-encoding.ts'
