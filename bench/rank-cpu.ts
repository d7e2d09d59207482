/**
 * `npx tsx bench/rank-cpu.ts [--calls N] [--compare-ref REF]`: CPU time of one `rank()` of 1,000
 * candidates in the worker core, in Node on the wasm backend, measured with `process.cpuUsage`:
 * on a machine shared with other processes, CPU time moves far less with the load than the wall
 * time `bench:rank` reports. Split into the call itself (what the caller waits for) and the work
 * left after it (the decision log, waited for with `decisions(0)`), for the same candidates
 * every call and for new ones. With `--compare-ref`, the core of another commit runs the same
 * calls in the same process, right after.
 */
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseCommand, parseFlags } from '../aggregator/cli/command.ts'
import { positiveInteger } from './flags.ts'
import { installTfjsNodeResolver } from './node-tfjs.ts'
import { withRefSources } from './rank.ts'
import { median } from './stats.ts'

const HELP = `Usage: npx tsx bench/rank-cpu.ts [options]

CPU time of one rank() of 1,000 candidates in the worker core, in Node on the wasm backend:
the call and the work left after it, for the same candidates every call and for new ones.

Options:
  --calls N          timed calls per scenario, after 20 warm-up calls (default 60)
  --compare-ref REF  also time the core of git commit REF (e.g. HEAD), in this process, right after
  -h, --help         this text`

const ROOT = fileURLToPath(new URL('..', import.meta.url))

interface Core {
  init(options: { dbName: string; spec: unknown; backends: string[] }): Promise<unknown>
  record(events: readonly { item: string; kind: string; at: number }[]): Promise<void>
  installGlobal(version: number, weights: Float32Array): Promise<void>
  trainLocal(plan: { epochs: number; batchSize: number; learningRate: number; maxExamples: number }): Promise<unknown>
  rank(candidates: readonly string[], context?: Record<string, string>): Promise<unknown>
  rankColumns?(candidates: readonly string[], context?: Record<string, string>): Promise<unknown>
  decisions(limit: number): Promise<unknown>
  close(): Promise<void>
}

function cpuMs(): number {
  const { user, system } = process.cpuUsage()
  return (user + system) / 1000
}

/** Median CPU ms of the call and of what follows it, per scenario, for the sources at `root`. */
async function measure(root: string, calls: number): Promise<Record<'same' | 'fresh', { call: number; after: number }>> {
  const { createWorkerCore } = (await import(join(root, 'worker/core.ts'))) as { createWorkerCore: (o: object) => Core }
  const { MemoryDeviceStore } = (await import(join(root, 'worker/store/memory-store.ts'))) as { MemoryDeviceStore: new () => object }
  const { DEFAULT_MF_OPTIONS, initFederatedWeights, mfSpec } = (await import(join(root, 'protocol/model-spec.ts'))) as {
    DEFAULT_MF_OPTIONS: object
    initFederatedWeights: (spec: unknown, uniform: () => number) => Float32Array
    mfSpec: (name: string, options: object) => unknown
  }
  const { seededUniform } = (await import(join(root, 'worker/model/random.ts'))) as { seededUniform: (seed: number) => () => number }
  const spec = mfSpec('default', DEFAULT_MF_OPTIONS)
  const core = createWorkerCore({ seed: 1, openStore: async () => new MemoryDeviceStore() })
  await core.init({ dbName: 'rank-cpu', spec, backends: ['wasm'] })
  // The history and training of `bench:rank`'s page.
  const kinds = ['view', 'click', 'like', 'purchase']
  await core.record(Array.from({ length: 300 }, (_, i) => ({ item: `item-${(i * 7) % 100}`, kind: kinds[i % 4] as string, at: i })))
  await core.installGlobal(1, initFederatedWeights(spec, seededUniform(2)))
  await core.trainLocal({ epochs: 2, batchSize: 64, learningRate: 0.05, maxExamples: 5_000 })
  // What the page calls: `rankColumns` where the core has it.
  const rank = (candidates: readonly string[]): Promise<unknown> => (core.rankColumns ?? core.rank).call(core, candidates, { surface: 'bench' })
  const same = Array.from({ length: 1000 }, (_, i) => `item-${i}`)
  let fresh = 0
  const out = { same: { call: 0, after: 0 }, fresh: { call: 0, after: 0 } }
  for (const scenario of ['same', 'fresh'] as const) {
    const call: number[] = []
    const after: number[] = []
    for (let i = 0; i < 20 + calls; i++) {
      const candidates = scenario === 'same' ? same : Array.from({ length: 1000 }, (_, j) => `fresh-${++fresh}-${j}`)
      const t0 = cpuMs()
      await rank(candidates)
      const t1 = cpuMs()
      await core.decisions(0)
      if (i >= 20) {
        call.push(t1 - t0)
        after.push(cpuMs() - t1)
      }
    }
    out[scenario] = { call: median(call), after: median(after) }
  }
  await core.close()
  return out
}

interface Config {
  readonly calls: number
  readonly compareRef: string | null
}

/** The command line as a config, or `help`; throws `UsageError` on a bad one. */
function parse(argv: string[]): Config | 'help' {
  const { values } = parseFlags({
    args: argv,
    strict: true,
    options: { calls: { type: 'string' }, 'compare-ref': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  })
  if (values.help === true) return 'help'
  return { calls: positiveInteger(values.calls, 60, 'calls'), compareRef: values['compare-ref'] ?? null }
}

async function run(argv: string[]): Promise<number> {
  const config = parseCommand('npx tsx bench/rank-cpu.ts', HELP, () => parse(argv))
  if (typeof config === 'number') return config
  const { calls, compareRef } = config
  installTfjsNodeResolver()
  const rows: [string, Awaited<ReturnType<typeof measure>>][] = [['this checkout', await measure(ROOT, calls)]]
  if (compareRef !== null) rows.push([compareRef, await withRefSources(compareRef, (root) => measure(root, calls))])
  console.log(`\nCPU ms per rank() of 1,000 candidates (median of ${calls} calls, wasm in Node)\n`)
  console.log('| sources | same ids: call | after | new ids: call | after |')
  console.log('|---|---|---|---|---|')
  for (const [name, r] of rows) console.log(`| ${name} | ${r.same.call.toFixed(2)} | ${r.same.after.toFixed(2)} | ${r.fresh.call.toFixed(2)} | ${r.fresh.after.toFixed(2)} |`)
  return 0
}

process.exitCode = await run(process.argv.slice(2))
