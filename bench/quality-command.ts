/**
 * `hearth bench quality`: HR@10 and NDCG@10 of the default model on MovieLens 100K or an NCF
 * split (the NCF protocol, He et al., WWW 2017, §4.1), trained centrally, federated, and
 * federated with secure aggregation and central DP, against ItemPop (issue 4, item 6).
 *
 * Progress goes to stderr; stdout gets the table, or one JSON object with `--json`. The same
 * JSON is written to bench/out/quality.json (gitignored: figures belong in bench/RESULTS.md,
 * the data never in the repository).
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { cpus } from 'node:os'
import { fileURLToPath } from 'node:url'
import { parseCommand, parseFlags, UsageError } from '../aggregator/cli/command.ts'
import { nonNegativeInteger, oneOf, positiveInteger, positiveNumber } from './flags.ts'
import { installTfjsNodeResolver } from './node-tfjs.ts'
import { Progress } from './progress.ts'
import { checkTargets, formatReport, METHOD_NAMES, METHODS } from './quality-report.ts'
import type { Method, QualityReport } from './quality-report.ts'
import type { QualitySettings } from './quality-run.ts'
import type { ServerOptimizer } from './quality-federated.ts'
import type { OptimizerKind } from '../worker/model/train.ts'

const HELP = `Usage: hearth bench quality (--movielens DIR | --ncf-dir DIR) [options]

Leave-one-out HR@10 / NDCG@10 with 99 sampled negatives (the NCF protocol) for ItemPop, the
default model trained centrally, federated (every user one device, FedAvg), federated with
secure aggregation, and federated with secure aggregation and DP.

Data (exactly one):
  --movielens DIR    MovieLens 100K folder (u.data, u.item, u.genre); split here, seeded
  --ncf-dir DIR      NCF split: train.rating, test.rating, test.negative (0-based, tab separated)

Options:
  --methods LIST     comma-separated subset of ${METHODS.join(',')} (default all)
  --epochs N         central training epochs (default ${defaults().central.epochs})
  --rounds N         federated rounds (default ${defaults().federated.rounds}; SecAgg + DP: ${defaults().secaggDp.rounds})
  --cohort N         expected devices per round (default ${defaults().federated.cohort}; SecAgg + DP: ${defaults().secaggDp.cohort})
  --epsilon E        DP target after all rounds, delta 1e-5 (default ${defaults().privacy.epsilon})
  --clip C           L2 clip norm of a device's update with SecAgg (default ${defaults().privacy.clipNorm};
                     SecAgg + DP: ${defaults().secaggDp.clipNorm})
  --seed S           seed of the split, initialization and sampling (default ${defaults().seed})
  --json             print one JSON object instead of the table
  -h, --help         this text

Tuning (defaults are the settings of bench/RESULTS.md):
  --users N          only the first N users: a cheaper run, not comparable with the full one
  --dim D            embedding width (default ${defaults().model.dim})
  --buckets B        item id buckets (default ${defaults().model.buckets})
  --feature-buckets F  buckets of the genres as item features; 0: no features (default ${defaults().model.featureBuckets})
  --negatives K      sampled negatives per positive, central and on devices (default ${defaults().central.negatives})
  --batch N          central batch size in positives (default ${defaults().central.batchSize})
  --lr X             central Adam learning rate (default ${defaults().central.learningRate})
  --lr-decay G       central learning rate times G after each epoch (default ${defaults().central.lrDecay})
  --l2 X             central L2 weight (default ${defaults().central.l2})
  --eval-every N     also evaluate every N central epochs / federated rounds (stderr)
  --client-epochs N  local epochs per round (default ${defaults().federated.clientEpochs})
  --client-optimizer sgd|adam  devices' optimizer in a round (default ${defaults().federated.clientOptimizer};
                     SecAgg + DP: ${defaults().secaggDp.clientOptimizer})
  --client-lr X      devices' learning rate (default ${defaults().federated.clientLearningRate}; SecAgg + DP: ${defaults().secaggDp.clientLearningRate})
                     --rounds, --cohort, --clip, --client-optimizer, --client-lr and
                     --server-shared-rate, when given, apply to every arm
  --server-optimizer fedavg|fedadagrad|fedadam|fedyogi  the aggregator's step on the mean
                     delta (default ${defaults().federated.serverOptimizer})
  --server-lr X      the adaptive optimizers' learning rate (default ${defaults().federated.serverLearningRate})
  --server-tau X     their tau (default ${defaults().federated.serverTau})
  --server-lr-decay G  their rate times G after each round (default ${defaults().federated.serverLearningRateDecay})
  --server-shared-rate F  their rate times F on the tensors every device updates: all but the
                     item id tables (default ${defaults().federated.serverSharedRate}; SecAgg + DP: ${defaults().secaggDp.serverSharedRate})`

/** The settings the figures in bench/RESULTS.md were measured with. */
function defaults(): QualitySettings {
  return {
    seed: 1,
    evalEvery: 0,
    users: null,
    model: { buckets: 65_536, dim: 32, featureBuckets: 64 },
    central: { epochs: 12, batchSize: 1024, learningRate: 0.01, lrDecay: 1, negatives: 4, l2: 1e-3 },
    federated: {
      rounds: 60,
      cohort: 100,
      clientEpochs: 1,
      clientBatchSize: 32,
      clientLearningRate: 0.005,
      clientOptimizer: 'adam',
      negatives: 4,
      serverOptimizer: 'fedadam',
      serverLearningRate: 0.05,
      serverTau: 1e-3,
      serverLearningRateDecay: 1,
      serverSharedRate: 0.3,
    },
    privacy: { clipNorm: 3, epsilon: 8, delta: 1e-5 },
    secaggDp: { rounds: 40, cohort: 200, clientOptimizer: 'sgd', clientLearningRate: 0.5, clipNorm: 0.1, serverSharedRate: 1 },
  }
}

const CLIENT_OPTIMIZERS: readonly OptimizerKind[] = ['sgd', 'adam']
const SERVER_OPTIMIZERS: readonly ServerOptimizer[] = ['fedavg', 'fedadagrad', 'fedadam', 'fedyogi']

function methodList(value: string | undefined): Method[] {
  if (value === undefined) return [...METHODS]
  const asked = value.split(',').map((m) => m.trim())
  for (const m of asked) if (!(METHODS as readonly string[]).includes(m)) throw new UsageError(`--methods: unknown method "${m}" (known: ${METHODS.join(', ')})`)
  return METHODS.filter((m) => asked.includes(m))
}

interface Parsed {
  readonly source: { readonly kind: 'movielens' | 'ncf'; readonly dir: string }
  readonly methods: Method[]
  readonly settings: QualitySettings
  readonly json: boolean
}

/** The command line as settings, or `help`; throws `UsageError` on a bad one. */
function parse(argv: string[]): Parsed | 'help' {
  const { values } = parseFlags({
    args: argv,
    strict: true,
    options: {
      movielens: { type: 'string' },
      'ncf-dir': { type: 'string' },
      methods: { type: 'string' },
      epochs: { type: 'string' },
      rounds: { type: 'string' },
      cohort: { type: 'string' },
      epsilon: { type: 'string' },
      clip: { type: 'string' },
      seed: { type: 'string' },
      users: { type: 'string' },
      dim: { type: 'string' },
      buckets: { type: 'string' },
      'feature-buckets': { type: 'string' },
      negatives: { type: 'string' },
      lr: { type: 'string' },
      batch: { type: 'string' },
      l2: { type: 'string' },
      'lr-decay': { type: 'string' },
      'eval-every': { type: 'string' },
      'client-epochs': { type: 'string' },
      'client-lr': { type: 'string' },
      'client-optimizer': { type: 'string' },
      'server-optimizer': { type: 'string' },
      'server-lr': { type: 'string' },
      'server-tau': { type: 'string' },
      'server-lr-decay': { type: 'string' },
      'server-shared-rate': { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help === true) return 'help'
  if ((values.movielens === undefined) === (values['ncf-dir'] === undefined)) throw new UsageError('give exactly one of --movielens DIR and --ncf-dir DIR')
  const base = defaults()
  const epsilon = positiveNumber(values.epsilon, base.privacy.epsilon, 'epsilon')
  if (epsilon > 8) throw new UsageError(`--epsilon must be at most 8 (the issue's budget), got ${epsilon}`)
  const negatives = positiveInteger(values.negatives, base.central.negatives, 'negatives')
  const settings: QualitySettings = {
    ...base,
    seed: positiveInteger(values.seed, base.seed, 'seed'),
    users: values.users === undefined ? null : positiveInteger(values.users, 1, 'users'),
    evalEvery: positiveInteger(values['eval-every'], base.evalEvery, 'eval-every'),
    model: {
      dim: positiveInteger(values.dim, base.model.dim, 'dim'),
      buckets: positiveInteger(values.buckets, base.model.buckets, 'buckets'),
      featureBuckets: nonNegativeInteger(values['feature-buckets'], base.model.featureBuckets, 'feature-buckets'),
    },
    central: {
      ...base.central,
      epochs: positiveInteger(values.epochs, base.central.epochs, 'epochs'),
      negatives,
      batchSize: positiveInteger(values.batch, base.central.batchSize, 'batch'),
      learningRate: positiveNumber(values.lr, base.central.learningRate, 'lr'),
      lrDecay: positiveNumber(values['lr-decay'], base.central.lrDecay, 'lr-decay'),
      l2: positiveNumber(values.l2, base.central.l2, 'l2'),
    },
    federated: {
      ...base.federated,
      rounds: positiveInteger(values.rounds, base.federated.rounds, 'rounds'),
      cohort: positiveInteger(values.cohort, base.federated.cohort, 'cohort'),
      negatives,
      clientEpochs: positiveInteger(values['client-epochs'], base.federated.clientEpochs, 'client-epochs'),
      clientLearningRate: positiveNumber(values['client-lr'], base.federated.clientLearningRate, 'client-lr'),
      clientOptimizer: oneOf(values['client-optimizer'], CLIENT_OPTIMIZERS, 'client-optimizer') ?? base.federated.clientOptimizer,
      serverOptimizer: oneOf(values['server-optimizer'], SERVER_OPTIMIZERS, 'server-optimizer') ?? base.federated.serverOptimizer,
      serverLearningRate: positiveNumber(values['server-lr'], base.federated.serverLearningRate, 'server-lr'),
      serverTau: positiveNumber(values['server-tau'], base.federated.serverTau, 'server-tau'),
      serverLearningRateDecay: positiveNumber(values['server-lr-decay'], base.federated.serverLearningRateDecay, 'server-lr-decay'),
      serverSharedRate: positiveNumber(values['server-shared-rate'], base.federated.serverSharedRate, 'server-shared-rate'),
    },
    privacy: { ...base.privacy, epsilon, clipNorm: positiveNumber(values.clip, base.privacy.clipNorm, 'clip') },
    secaggDp: {
      rounds: positiveInteger(values.rounds, base.secaggDp.rounds, 'rounds'),
      cohort: positiveInteger(values.cohort, base.secaggDp.cohort, 'cohort'),
      clientOptimizer: oneOf(values['client-optimizer'], CLIENT_OPTIMIZERS, 'client-optimizer') ?? base.secaggDp.clientOptimizer,
      clientLearningRate: positiveNumber(values['client-lr'], base.secaggDp.clientLearningRate, 'client-lr'),
      clipNorm: positiveNumber(values.clip, base.secaggDp.clipNorm, 'clip'),
      serverSharedRate: positiveNumber(values['server-shared-rate'], base.secaggDp.serverSharedRate, 'server-shared-rate'),
    },
  }
  const source = values.movielens !== undefined ? ({ kind: 'movielens', dir: values.movielens } as const) : ({ kind: 'ncf', dir: values['ncf-dir'] as string } as const)
  return { source, methods: methodList(values.methods), settings, json: values.json === true }
}

async function measure(parsed: Parsed): Promise<QualityReport> {
  installTfjsNodeResolver()
  const { firstUsers, loadMovieLens, loadNcf } = await import('./quality-data.ts')
  const { runQuality } = await import('./quality-run.ts')
  const { startBackend } = await import('../worker/backend.ts')
  const started = performance.now()
  // wasm (SIMD) trains several times faster than the pure-JavaScript cpu backend.
  const backend = await startBackend(['wasm', 'cpu'], {})
  const all = parsed.source.kind === 'movielens' ? await loadMovieLens(parsed.source.dir, parsed.settings.seed) : await loadNcf(parsed.source.dir)
  const data = parsed.settings.users === null ? all : firstUsers(all, parsed.settings.users)
  Progress.note(`${data.name}: ${data.users} users, ${data.items} items, ${data.interactions} training interactions; backend ${backend}`)
  const results = await runQuality(data, parsed.settings, parsed.methods, (r) =>
    Progress.note(`${METHOD_NAMES[r.method]}: HR@10 ${r.quality.hr.toFixed(4)}, NDCG@10 ${r.quality.ndcg.toFixed(4)} (${r.seconds.toFixed(0)} s)`),
  )
  return {
    dataset: { name: data.name, users: data.users, items: data.items, interactions: data.interactions, testUsers: data.test.length },
    protocol: 'leave-one-out, 99 sampled negatives, HR@10 / NDCG@10 (NCF, He et al. 2017)',
    machine: { node: process.versions.node, cpus: cpus().length, backend },
    date: new Date().toISOString(),
    settings: parsed.settings,
    results,
    targets: checkTargets(results),
    seconds: (performance.now() - started) / 1000,
  }
}

async function save(report: QualityReport): Promise<void> {
  const dir = fileURLToPath(new URL('./out/', import.meta.url))
  await mkdir(dir, { recursive: true })
  await writeFile(`${dir}quality.json`, `${JSON.stringify(report, null, 2)}\n`)
}

/** Entry point of `hearth bench quality`; returns the exit code (2 for a bad command line). */
export async function run(argv: string[]): Promise<number> {
  const parsed = parseCommand('hearth bench quality', HELP, () => parse(argv))
  if (typeof parsed === 'number') return parsed
  const report = await measure(parsed)
  await save(report)
  console.log(parsed.json ? JSON.stringify(report) : formatReport(report))
  return 0
}
