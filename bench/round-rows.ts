/**
 * `npm run bench:round`: how long a device's part of a federated round takes
 * (`trainFromGlobal`: reconstruct the user vector, one epoch on the federated weights), which
 * trains only the id-table rows the device's data reaches (worker/model/row-subset.ts), against
 * the same steps on the full tables, by bucket count. Both run interleaved in one process on the
 * wasm backend (the simulated devices' and the quality benchmark's), so their ratio holds on a
 * noisy machine. One device with `--liked` items among `--seen` items it has seen.
 */
import { parseCommand, parseFlags } from '../aggregator/cli/command.ts'
import type { InteractionEvent } from '../protocol/events.ts'
import { initFederatedWeights, mfSpec } from '../protocol/model-spec.ts'
import { positiveInteger } from './flags.ts'
import { installTfjsNodeResolver } from './node-tfjs.ts'
import { median } from './stats.ts'

const HELP = `Usage: npm run bench:round -- [options]

A device's round training on the rows its data reaches, against the full tables.

Options:
  --buckets LIST  item id bucket counts (default 4096,65536)
  --dim D         embedding width (default 32)
  --liked N       items the device liked (default 100)
  --seen N        items it has seen, its negative pool (default 1682)
  --repeats N     rounds per figure; the median is reported (default 7)
  --json          print one JSON object instead of a table
  -h, --help      show this help`

interface Config {
  readonly bucketCounts: number[]
  readonly dim: number
  readonly liked: number
  readonly seenCount: number
  readonly repeats: number
  readonly json: boolean
}

/** The command line as a config, or `help`; throws `UsageError` on a bad one. */
function parse(argv: string[]): Config | 'help' {
  const { values } = parseFlags({
    args: argv,
    strict: true,
    options: {
      buckets: { type: 'string' },
      dim: { type: 'string' },
      liked: { type: 'string' },
      seen: { type: 'string' },
      repeats: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help === true) return 'help'
  return {
    bucketCounts: (values.buckets ?? '4096,65536').split(',').map((b) => positiveInteger(b, 0, 'buckets')),
    dim: positiveInteger(values.dim, 32, 'dim'),
    liked: positiveInteger(values.liked, 100, 'liked'),
    seenCount: positiveInteger(values.seen, 1_682, 'seen'),
    repeats: positiveInteger(values.repeats, 7, 'repeats'),
    json: values.json === true,
  }
}

/** Entry point of `npm run bench:round`; returns the exit code (2 for a bad command line). */
export async function run(argv: string[]): Promise<number> {
  const config = parseCommand('npm run bench:round', HELP, () => parse(argv))
  if (typeof config === 'number') return config
  const { bucketCounts, dim, liked, seenCount, repeats } = config

  installTfjsNodeResolver()
  const { startBackend } = await import('../worker/backend.ts')
  const { buildTrainingData } = await import('../worker/model/examples.ts')
  const { MfModel } = await import('../worker/model/mf-model.ts')
  const { seededUniform } = await import('../worker/model/random.ts')
  const { trainFromGlobal } = await import('../worker/model/round.ts')
  const { DEFAULT_RECONSTRUCTION, fit, reconstructUser } = await import('../worker/model/train.ts')
  const backend = await startBackend(['wasm', 'cpu'], {})

  const events: InteractionEvent[] = Array.from({ length: liked }, (_, i) => ({ item: `item-${i}`, kind: 'like', at: i }))
  const seen = Array.from({ length: seenCount }, (_, i) => ({ item: `item-${i}` }))
  const plan = { epochs: 1, batchSize: 32, learningRate: 0.01, maxExamples: 10_000 }
  const rows = []
  for (const buckets of bucketCounts) {
    const spec = mfSpec('bench-round', { buckets, dim })
    const global = initFederatedWeights(spec, seededUniform(1))
    const model = MfModel.create(spec, seededUniform(2))
    const data = buildTrainingData(events, seen, model.encoding, 10_000)
    const options = { plan, optimizer: 'adam' as const, negativesPerPositive: 4, reconstruction: DEFAULT_RECONSTRUCTION, uniform: seededUniform(3) }
    // The baseline: the same steps with every row of the id tables in the optimizer.
    const fullTables = async (): Promise<void> => {
      model.setFederated(global)
      await reconstructUser(model, data, { ...options.reconstruction, negativesPerPositive: 4, uniform: options.uniform })
      await fit(model, data, { epochs: plan.epochs, batchSize: plan.batchSize, learningRate: plan.learningRate, optimizer: 'adam', trainable: 'federated', negativesPerPositive: 4, uniform: options.uniform })
      const trained = await model.readFederated()
      const delta = new Float32Array(trained.length)
      for (let i = 0; i < delta.length; i++) delta[i] = (trained[i] as number) - (global[i] as number)
    }
    const reachable = async (): Promise<void> => {
      await trainFromGlobal(model, global, data, options)
    }
    const time = async (f: () => Promise<void>): Promise<number> => {
      const started = performance.now()
      await f()
      return performance.now() - started
    }
    await fullTables()
    await reachable()
    const full: number[] = []
    const subset: number[] = []
    for (let r = 0; r < repeats; r++) {
      full.push(await time(fullTables))
      subset.push(await time(reachable))
    }
    model.dispose()
    rows.push({ buckets, reachableRows: new Set(data.items.buckets).size, fullMs: median(full), reachableMs: median(subset), speedup: median(full) / median(subset) })
  }
  const summary = { backend, dim, liked, seen: seenCount, repeats, rows }
  if (config.json) {
    console.log(JSON.stringify(summary))
    return 0
  }
  console.log(`\nOne device's round (${liked} liked of ${seenCount} seen items, dim ${dim}, 1 epoch, Adam, 4 negatives, reconstruction ${DEFAULT_RECONSTRUCTION.steps} steps); ${backend} backend, median of ${repeats}\n`)
  console.log('| buckets | rows reached | full tables ms | reachable rows ms | speed-up |')
  console.log('|---|---|---|---|---|')
  for (const r of rows) console.log(`| ${r.buckets.toLocaleString('en-US')} | ${r.reachableRows} | ${r.fullMs.toFixed(1)} | ${r.reachableMs.toFixed(1)} | **${r.speedup.toFixed(2)}x** |`)
  return 0
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = await run(process.argv.slice(2))
}
