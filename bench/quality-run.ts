/**
 * Runs the quality benchmark's methods on one dataset, in the order of the table: ItemPop, the
 * model trained centrally, then federated without and with privacy. Imports TensorFlow.js, so
 * load it after `installTfjsNodeResolver()` (bench/node-tfjs.ts).
 */
import { mfSpec } from '../protocol/model-spec.ts'
import type { ModelSpec } from '../protocol/model-spec.ts'
import { Progress } from './progress.ts'
import { trainCentral } from './quality-central.ts'
import type { QualityDataset } from './quality-data.ts'
import { evaluateWithReconstruction, trainFederated } from './quality-federated.ts'
import type { FederatedOptions, PrivacyOptions } from './quality-federated.ts'
import { evaluate, itemPopularity } from './quality-metrics.ts'
import type { Method, MethodResult } from './quality-report.ts'
import type { ServerOptimizer } from './quality-federated.ts'
import { DEFAULT_RECONSTRUCTION } from '../worker/model/train.ts'
import type { OptimizerKind } from '../worker/model/train.ts'

/** Every knob of a run; `--json` echoes it so that a figure can be reproduced. */
export interface QualitySettings {
  readonly seed: number
  /** Also evaluate (and log to stderr) every this many central epochs or federated rounds; 0: only at the end. */
  readonly evalEvery: number
  /** Only the first this many users (tuning runs); null: all. */
  readonly users: number | null
  readonly model: { readonly buckets: number; readonly dim: number; readonly featureBuckets: number }
  readonly central: {
    readonly epochs: number
    readonly batchSize: number
    readonly learningRate: number
    /** Per-epoch factor of the learning rate (1: constant). */
    readonly lrDecay: number
    readonly negatives: number
    readonly l2: number
  }
  readonly federated: {
    readonly rounds: number
    /** Expected devices per round; each joins with probability cohort / users (Poisson sampling). */
    readonly cohort: number
    readonly clientEpochs: number
    readonly clientBatchSize: number
    readonly clientLearningRate: number
    readonly clientOptimizer: OptimizerKind
    readonly negatives: number
    readonly serverOptimizer: ServerOptimizer
    readonly serverLearningRate: number
    readonly serverTau: number
    /** FedAdam's per-round learning-rate factor γ (1: constant). */
    readonly serverLearningRateDecay: number
    /** The server's rate times this on the shared tensors (all but the id tables; 1: as the rest). */
    readonly serverSharedRate: number
  }
  readonly privacy: { readonly clipNorm: number; readonly epsilon: number; readonly delta: number }
  /**
   * The SecAgg + DP arm's own rounds, cohort, device optimizer, clip norm and shared-tensor rate (the best measured
   * for it: at a fixed ε the accountant's noise on the mean, zC/(qN), falls as the sampling rate q
   * grows and rises with the rounds; DP noise scales with C, and SGD's small deltas clip little at
   * C = 0.1); every other arm uses `federated` and `privacy`.
   */
  readonly secaggDp: {
    readonly rounds: number
    readonly cohort: number
    readonly clientOptimizer: OptimizerKind
    readonly clientLearningRate: number
    readonly clipNorm: number
    readonly serverSharedRate: number
  }
}

/** The model of a run: genres become item features when the dataset has them. */
export function benchSpec(settings: QualitySettings, data: QualityDataset): ModelSpec {
  const { buckets, dim, featureBuckets } = settings.model
  return mfSpec('bench-quality', data.features === null || featureBuckets === 0 ? { buckets, dim } : { buckets, dim, features: { buckets: featureBuckets } })
}

async function runItemPop(data: QualityDataset): Promise<MethodResult> {
  const started = performance.now()
  const counts = itemPopularity(data.train, data.items)
  const quality = await evaluate(data.test, (c) => [counts[c.item] as number, ...Array.from(c.negatives, (n) => counts[n] as number)])
  return { method: 'itempop', quality, seconds: (performance.now() - started) / 1000 }
}

async function runCentral(data: QualityDataset, settings: QualitySettings): Promise<MethodResult> {
  const { epochs, batchSize, learningRate, lrDecay, negatives, l2 } = settings.central
  const progress = new Progress('central', epochs)
  const spec = benchSpec(settings, data)
  const result = await trainCentral(data, {
    spec,
    epochs,
    batchSize,
    learningRate,
    learningRateDecay: lrDecay,
    negatives,
    userL2: l2,
    itemL2: l2,
    seed: settings.seed,
    useFeatures: spec.options.features !== undefined,
    evalEvery: settings.evalEvery,
    onEpoch: (epoch, loss, quality) => {
      progress.update(epoch, `loss ${loss.toFixed(4)}`)
      if (quality !== null) Progress.note(`central: epoch ${epoch}, loss ${loss.toFixed(4)}, HR@10 ${quality.hr.toFixed(4)}, NDCG@10 ${quality.ndcg.toFixed(4)}`)
    },
  })
  // The same item side served as devices serve it: each user's vector reconstructed from its own
  // data rather than read from the jointly trained table. The federated arms are evaluated this
  // way, so this splits their gap to central into reconstruction and the federated item side.
  const reconstructed = await evaluateWithReconstruction(data, spec, result.weights, {
    reconstruction: DEFAULT_RECONSTRUCTION,
    negatives,
    seed: settings.seed,
    useFeatures: spec.options.features !== undefined,
  })
  return { method: 'central', quality: result.quality, seconds: result.seconds, epochs: result.epochs, reconstructed }
}

function privacyOf(method: Method, settings: QualitySettings): PrivacyOptions | undefined {
  const { clipNorm, epsilon, delta } = settings.privacy
  if (method === 'secagg') return { clipNorm }
  if (method === 'secagg-dp') return { clipNorm: settings.secaggDp.clipNorm, dp: { epsilon, delta } }
  return undefined
}

async function runFederated(data: QualityDataset, settings: QualitySettings, method: Method): Promise<MethodResult> {
  const { rounds, cohort, clientOptimizer, clientLearningRate, serverSharedRate } = settings.secaggDp
  const f = method === 'secagg-dp' ? { ...settings.federated, rounds, cohort, clientOptimizer, clientLearningRate, serverSharedRate } : settings.federated
  const progress = new Progress(method, f.rounds)
  const privacy = privacyOf(method, settings)
  const spec = benchSpec(settings, data)
  const options: FederatedOptions = {
    spec,
    rounds: f.rounds,
    participation: Math.min(1, f.cohort / data.train.length),
    plan: { epochs: f.clientEpochs, batchSize: f.clientBatchSize, learningRate: f.clientLearningRate, maxExamples: 10_000 },
    clientOptimizer: f.clientOptimizer,
    serverOptimizer: f.serverOptimizer,
    serverLearningRate: f.serverLearningRate,
    serverTau: f.serverTau,
    serverLearningRateDecay: f.serverLearningRateDecay,
    serverSharedRate: f.serverSharedRate,
    negatives: f.negatives,
    // As a device reconstructs before ranking.
    reconstruction: DEFAULT_RECONSTRUCTION,
    seed: settings.seed,
    useFeatures: spec.options.features !== undefined,
    ...(privacy === undefined ? {} : { privacy }),
    evalEvery: settings.evalEvery,
    onRound: (round, info) => {
      progress.update(round, `cohort ${info.clients}, loss ${info.loss.toFixed(4)}`)
      if (info.quality !== null) Progress.note(`${method}: round ${round}, loss ${info.loss.toFixed(4)}, HR@10 ${info.quality.hr.toFixed(4)}, NDCG@10 ${info.quality.ndcg.toFixed(4)}`)
    },
  }
  const result = await trainFederated(data, options)
  Progress.note(`${method}: evaluated in ${result.seconds.toFixed(0)} s in all`)
  return {
    method,
    quality: result.quality,
    seconds: result.seconds,
    rounds: result.rounds,
    device: `${f.clientOptimizer === 'sgd' ? 'SGD' : 'Adam'} lr ${f.clientLearningRate}`,
    meanCohort: result.meanCohort,
    medianUpdateNorm: result.medianUpdateNorm,
    ...(result.privacy === undefined ? {} : { privacy: result.privacy }),
  }
}

/** Runs `methods` in table order; each result is reported to `onResult` as it lands. */
export async function runQuality(data: QualityDataset, settings: QualitySettings, methods: readonly Method[], onResult: (r: MethodResult) => void): Promise<MethodResult[]> {
  const out: MethodResult[] = []
  for (const method of methods) {
    let result: MethodResult
    if (method === 'itempop') result = await runItemPop(data)
    else if (method === 'central') result = await runCentral(data, settings)
    else result = await runFederated(data, settings, method)
    onResult(result)
    out.push(result)
  }
  return out
}
