/**
 * The benchmark's federated runs: every user is one device holding only its own interactions,
 * training with the devices' own round code (`trainFromGlobal`: Federated Reconstruction of the
 * user vector, then local training of the federated weights with the devices' round optimizer;
 * Singhal et al., NeurIPS 2021, Alg. 1), and the aggregator's own server step on the averaged
 * deltas (FedAvg, McMahan et al., AISTATS 2017, or FedAdam, Reddi et al., ICLR 2021).
 *
 * Each round samples devices independently with probability q (Poisson sampling, the sampling
 * the DP accountant assumes). The update is Σ Δ / (qN): the fixed denominator of DP-FedAvg
 * (McMahan, Ramage, Talwar, Zhang, ICLR 2018, Alg. 1), which the sum's sensitivity argument
 * needs; without privacy the same estimator keeps the two runs comparable.
 *
 * With privacy, in the order the real system applies them (DESIGN.md §2.4); the secure
 * aggregation run stops after step 2, the DP run takes all three:
 * 1. each device clips its delta to L2 norm C (`protocol/clip.ts`);
 * 2. secure aggregation: each clipped delta is quantized into Z_{2^b} with the protocol's own
 *    `quantize` (stochastic rounding) and the quantized vectors are added mod 2^b, which is
 *    exactly what the server obtains after unmasking: the pairwise and self masks cancel in the
 *    sum (property-tested in test/secagg), so the simulation adds the quantized vectors directly
 *    instead of running key agreement for every device; `dequantizeSum` maps the sum back;
 * 3. central DP: Gaussian noise N(0, (zC)²) on every coordinate of the sum, with the
 *    aggregator's sampler (`gridGaussianNoise`, CSPRNG), z chosen by the RDP accountant for
 *    (ε, δ) after all rounds at rate q (`noiseMultiplierForEpsilon`, Mironov, Talwar, Zhang 2019).
 *
 * Evaluation, as a device would serve: with the final global model each user reconstructs its
 * vector from its own training data and ranks the test item among its 99 negatives.
 */
import type { TrainingPlan } from '../protocol/messages.ts'
import type { ModelSpec } from '../protocol/model-spec.ts'
import { federatedLayout, initFederatedWeights, initTensor, localLayout } from '../protocol/model-spec.ts'
import { AdaptiveOptimizer } from '../aggregator/rounds/adaptive-optimizer.ts'
import type { AdaptiveKind } from '../aggregator/rounds/adaptive-optimizer.ts'
import { FedAvg } from '../aggregator/rounds/fedavg.ts'
import { clipL2 } from '../protocol/clip.ts'
import { noiseMultiplierForEpsilon } from '../protocol/dp/accountant.ts'
import { gridGaussianNoise } from '../protocol/dp/sampling/gaussian.ts'
import { RandomBits } from '../protocol/dp/sampling/random.ts'
import { dequantizeSum, quantize } from '../protocol/secagg/quantize.ts'
import type { QuantizationParams } from '../protocol/secagg/quantize.ts'
import type { InteractionEvent } from '../protocol/events.ts'
import { buildTrainingData } from '../worker/model/examples.ts'
import type { TrainingData } from '../worker/model/examples.ts'
import type { ItemRef } from '../worker/model/item-encoding.ts'
import { MfModel } from '../worker/model/mf-model.ts'
import { seededUniform } from '../worker/model/random.ts'
import { trainFromGlobal } from '../worker/model/round.ts'
import { ID_TABLES } from '../worker/model/row-subset.ts'
import { reconstructUser } from '../worker/model/train.ts'
import type { OptimizerKind } from '../worker/model/train.ts'
import { encodeCatalog, scoreCases } from './quality-central.ts'
import { itemId } from './quality-data.ts'
import type { QualityDataset } from './quality-data.ts'
import { evaluate } from './quality-metrics.ts'
import type { RankingQuality } from './quality-metrics.ts'
import { median } from './stats.ts'

/** Secure aggregation, optionally with central DP, as in the module comment. */
export interface PrivacyOptions {
  readonly clipNorm: number
  /** b of Z_{2^b}. Default 32. */
  readonly modulusBits?: number
  /** Central DP: the target (ε, δ) after all rounds; z is derived from it. Absent: no noise. */
  readonly dp?: { readonly epsilon: number; readonly delta: number }
}

/** What a private run did: the clip, and with DP the z and the (ε, δ) the accountant certifies. */
export interface PrivacyOutcome {
  readonly clipNorm: number
  /** Share of uploads whose delta was longer than the clip norm. */
  readonly clippedShare: number
  /** z; 0 without DP. */
  readonly noiseMultiplier: number
  readonly epsilon?: number
  readonly delta?: number
}

/**
 * The server's step on Σ Δ / (qN), the aggregator's own optimizers (aggregator/rounds):
 * `fedavg` adds the mean delta (FedAvg, η = 1); the adaptive ones treat it as the
 * pseudo-gradient of Reddi et al. ("Adaptive Federated Optimization", ICLR 2021, Alg. 2) and add
 * η·m/(√v + τ), so that rarely updated item rows are not drowned in the 1/(qN) average.
 */
export type ServerOptimizer = 'fedavg' | AdaptiveKind

export interface FederatedOptions {
  readonly spec: ModelSpec
  readonly rounds: number
  /** q: each device joins a round with this probability. */
  readonly participation: number
  readonly plan: TrainingPlan
  /**
   * The devices' optimizer in a round (the worker's `roundOptimizer` option). Default `sgd`, as
   * in FedAvg; `adam` moves every row a device trained by about the learning rate per step,
   * where SGD on a mean loss moves a row by its share of the batch.
   */
  readonly clientOptimizer?: OptimizerKind
  readonly serverOptimizer: ServerOptimizer
  /** η of the adaptive optimizers (FedAvg's step is the mean itself). */
  readonly serverLearningRate: number
  /**
   * τ of the adaptive optimizers: where √v is below τ, steps shrink in proportion to the mean delta instead of
   * being normalized to η. Default the aggregator's, 10⁻³.
   */
  readonly serverTau?: number
  /** The adaptive optimizers' γ: round t steps with η·γ^t. Default 1. */
  readonly serverLearningRateDecay?: number
  /**
   * The adaptive optimizers' η times this on the tensors every device updates (all but the id
   * tables `item_embedding` and `item_bias`; `tensorLearningRates` of the aggregator). Default 1.
   */
  readonly serverSharedRate?: number
  readonly negatives: number
  readonly reconstruction: { readonly steps: number; readonly learningRate: number; readonly maxExamples: number }
  readonly seed: number
  readonly useFeatures: boolean
  readonly privacy?: PrivacyOptions
  /** Also evaluate after every this many rounds (before the last); 0 or absent: only at the end. */
  readonly evalEvery?: number
  /** `quality` is null unless the round was evaluated. */
  readonly onRound?: (round: number, info: { readonly clients: number; readonly loss: number; readonly seconds: number; readonly quality: RankingQuality | null }) => void
}

export interface FederatedResult {
  readonly quality: RankingQuality
  readonly rounds: number
  readonly seconds: number
  /** Mean devices per round. */
  readonly meanCohort: number
  /** Median L2 norm of the devices' deltas before clipping: where a clip norm bites. */
  readonly medianUpdateNorm: number
  readonly privacy?: PrivacyOutcome
}

/** One simulated device: its training data and its own user vector. */
interface Device {
  readonly data: TrainingData
  local: Float32Array
}

/** Every user's interactions as `like` events, oldest first, seen items = the catalog. */
function makeDevices(data: QualityDataset, model: MfModel, useFeatures: boolean, seed: number): Device[] {
  const catalog: ItemRef[] = Array.from({ length: data.items }, (_, item) => {
    const features = useFeatures ? data.features?.[item] : undefined
    return features === undefined ? { item: itemId(item) } : { item: itemId(item), features }
  })
  const uniform = seededUniform(seed)
  const local = localLayout(model.spec)
  return data.train.map((history) => {
    const events: InteractionEvent[] = Array.from(history, (item, at) => {
      const ref = catalog[item] as ItemRef
      return ref.features === undefined ? { item: ref.item, kind: 'like', at } : { item: ref.item, kind: 'like', at, features: ref.features }
    })
    const vector = new Float32Array(model.localLength)
    for (const { tensor, offset, size } of local) initTensor(tensor, vector.subarray(offset, offset + size), uniform)
    return { data: buildTrainingData(events, catalog, model.encoding, Math.max(history.length, 1)), local: vector }
  })
}

/** `factor` for every federated tensor of `spec` but the id tables, which only the devices holding an item update. */
function sharedTensorRates(spec: ModelSpec, factor: number): Record<string, number> {
  return Object.fromEntries(federatedLayout(spec).flatMap(({ tensor }) => (ID_TABLES.has(tensor.name) ? [] : [[tensor.name, factor]])))
}

/** Adds `x` into `sum` mod 2^32 (b = 32) or mod 2^b. */
function addModular(sum: Uint32Array, x: Uint32Array, bits: number): void {
  const mask = bits === 32 ? 0xffffffff : 2 ** bits - 1
  for (let i = 0; i < sum.length; i++) sum[i] = (((sum[i] as number) + (x[i] as number)) & mask) >>> 0
}

function l2Norm(x: Float32Array): number {
  let sum = 0
  for (let i = 0; i < x.length; i++) sum += (x[i] as number) ** 2
  return Math.sqrt(sum)
}

/** Runs federated training and evaluates it; see the module comment. */
export async function trainFederated(data: QualityDataset, options: FederatedOptions): Promise<FederatedResult> {
  const started = performance.now()
  const uniform = seededUniform(options.seed)
  const model = MfModel.create(options.spec, uniform)
  const devices = makeDevices(data, model, options.useFeatures, options.seed + 1)
  const n = devices.length
  let global = initFederatedWeights(options.spec, uniform)
  const layout = federatedLayout(options.spec)
  const length = global.length
  const expectedCohort = options.participation * n
  const privacy = options.privacy
  const bits = privacy?.modulusBits ?? 32
  const dp = privacy?.dp === undefined ? null : noiseMultiplierForEpsilon({ samplingRate: options.participation, rounds: options.rounds, ...privacy.dp })
  const z = dp?.noiseMultiplier ?? 0
  const random = dp === null ? null : new RandomBits()
  const server =
    options.serverOptimizer === 'fedavg'
      ? new FedAvg()
      : new AdaptiveOptimizer(options.serverOptimizer, {
          learningRate: options.serverLearningRate,
          ...(options.serverTau === undefined ? {} : { tau: options.serverTau }),
          ...(options.serverLearningRateDecay === undefined ? {} : { learningRateDecay: options.serverLearningRateDecay }),
          ...(options.serverSharedRate === undefined || options.serverSharedRate === 1 ? {} : { tensorLearningRates: sharedTensorRates(options.spec, options.serverSharedRate) }),
        })
  const norms: number[] = []
  let cohortTotal = 0
  let clipped = 0
  let uploads = 0
  try {
    for (let round = 1; round <= options.rounds; round++) {
      const roundStarted = performance.now()
      const cohort = devices.filter(() => uniform() < options.participation)
      cohortTotal += cohort.length
      const plainSum = new Float64Array(length)
      const quantized = new Uint32Array(length)
      const params: QuantizationParams | null = privacy === undefined ? null : { clipNorm: privacy.clipNorm, modulusBits: bits, maxSummands: n }
      let loss = 0
      for (const device of cohort) {
        model.setLocal(device.local)
        const outcome = await trainFromGlobal(model, global, device.data, {
          plan: options.plan,
          optimizer: options.clientOptimizer ?? 'sgd',
          negativesPerPositive: options.negatives,
          reconstruction: options.reconstruction,
          uniform,
        })
        device.local = await model.readLocal()
        loss += outcome.loss
        norms.push(l2Norm(outcome.delta))
        if (params === null) {
          for (let i = 0; i < length; i++) plainSum[i] = (plainSum[i] as number) + (outcome.delta[i] as number)
        } else {
          const clip = clipL2(outcome.delta, params.clipNorm)
          uploads++
          if (clip.clipped) clipped++
          addModular(quantized, quantize(clip.values, params, uniform), bits)
        }
      }
      let sum: Float64Array = plainSum
      if (params !== null) {
        const unmasked = dequantizeSum(quantized, cohort.length, params)
        sum = random === null ? unmasked : gridGaussianNoise(random, unmasked, z * params.clipNorm).values
      }
      global = server.step(global, { sum, count: expectedCohort }, layout)
      const seconds = (performance.now() - roundStarted) / 1000
      const evalNow = options.evalEvery !== undefined && options.evalEvery > 0 && round % options.evalEvery === 0 && round < options.rounds
      options.onRound?.(round, { clients: cohort.length, loss: loss / Math.max(cohort.length, 1), seconds, quality: evalNow ? await evaluateDevices(data, model, devices, global, options) : null })
    }
    const quality = await evaluateDevices(data, model, devices, global, options)
    return {
      quality,
      rounds: options.rounds,
      seconds: (performance.now() - started) / 1000,
      meanCohort: cohortTotal / Math.max(options.rounds, 1),
      medianUpdateNorm: median(norms),
      ...(privacy === undefined
        ? {}
        : {
            privacy: {
              clipNorm: privacy.clipNorm,
              clippedShare: clipped / Math.max(uploads, 1),
              noiseMultiplier: z,
              ...(dp === null || privacy.dp === undefined ? {} : { epsilon: dp.epsilon, delta: privacy.dp.delta }),
            },
          }),
    }
  } finally {
    model.dispose()
  }
}

/**
 * Ranking quality of item-side weights `global` when every user reconstructs its vector on its
 * own data (Federated Reconstruction's evaluation), from a fresh vector.
 */
export async function evaluateWithReconstruction(
  data: QualityDataset,
  spec: ModelSpec,
  global: Float32Array,
  options: Pick<FederatedOptions, 'reconstruction' | 'negatives' | 'seed' | 'useFeatures'>,
): Promise<RankingQuality> {
  const model = MfModel.create(spec, seededUniform(options.seed))
  try {
    return await evaluateDevices(data, model, makeDevices(data, model, options.useFeatures, options.seed + 1), global, options)
  } finally {
    model.dispose()
  }
}

/** Each user reconstructs its vector on the final model, then ranks its test case. */
async function evaluateDevices(
  data: QualityDataset,
  model: MfModel,
  devices: Device[],
  global: Float32Array,
  options: Pick<FederatedOptions, 'reconstruction' | 'negatives' | 'seed' | 'useFeatures'>,
): Promise<RankingQuality> {
  model.setFederated(global)
  const uniform = seededUniform(options.seed + 2)
  const vectors = new Map<number, Float32Array>()
  for (const c of data.test) {
    const device = devices[c.user] as Device
    model.setLocal(device.local)
    await reconstructUser(model, device.data, { ...options.reconstruction, negativesPerPositive: options.negatives, uniform })
    vectors.set(c.user, await model.readLocal())
  }
  const catalog = encodeCatalog(data, model, options.useFeatures)
  const scores = scoreCases(model, catalog, data.test, (c) => vectors.get(c.user) as Float32Array)
  let i = 0
  return evaluate(data.test, () => scores[i++] as Float32Array)
}
