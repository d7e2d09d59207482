/**
 * `hearth bench <name>`: the benchmarks that have a command, each loaded only when called
 * (the quality benchmark pulls in TensorFlow.js, the ranking and training ones Chromium).
 */
import type { CommandModule } from '../bin/cli.ts'

const BENCHMARKS: Record<string, { readonly summary: string; readonly load: () => Promise<CommandModule> }> = {
  quality: { summary: 'HR@10 / NDCG@10 on MovieLens or an NCF split: ItemPop, central, federated, SecAgg, DP', load: () => import('./quality-command.ts') },
  rank: { summary: 'rank() of 1,000 candidates in Chromium: page and worker time against a plain-JS baseline', load: () => import('./rank.ts') },
  train: { summary: 'Training speed and IndexedDB throughput in the worker, in Chromium', load: () => import('./train.ts') },
}

const USAGE = [
  'Usage: hearth bench <name> [options]',
  '',
  'Benchmarks:',
  ...Object.entries(BENCHMARKS).map(([name, b]) => `  ${name.padEnd(8)}  ${b.summary}`),
  '',
  'Run `hearth bench <name> --help` for its options.',
].join('\n')

/** Entry point of `hearth bench`; 2 for an unknown or missing benchmark name. */
export async function run(argv: string[]): Promise<number> {
  const [name, ...rest] = argv
  if (name === '--help' || name === '-h') {
    console.log(USAGE)
    return 0
  }
  const entry = name === undefined ? undefined : BENCHMARKS[name]
  if (entry === undefined) {
    console.error(name === undefined ? USAGE : `hearth bench: unknown benchmark "${name}"\n\n${USAGE}`)
    return 2
  }
  return (await entry.load()).run(rest)
}
