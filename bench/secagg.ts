/**
 * Secure-aggregation benchmark: SecAgg+ against plain SecAgg for n in {100, 500, 1000},
 * m in {10^4, 10^5} and dropout in {0, 0.1, 0.3}, each against a plain sum of the same vectors
 * in the same run.
 *
 *   npx tsx bench/secagg.ts            # SecAgg+ everywhere, plain SecAgg where it fits (minutes)
 *   npx tsx bench/secagg.ts --full     # also the plain-SecAgg rows estimated by default (hours)
 *   npx tsx bench/secagg.ts --n 1000 --m 100000 --dropout 0.1 --mode secagg+   # one row
 *
 * Clients run one after another in this process, so each client's time is its own; the server
 * runs as it would (its AES runs on libuv's threads). Dropouts happen after ShareKeys, the case
 * where the server must remove the dropped clients' pairwise masks. Figures go to
 * bench/RESULTS.md, section "Secure aggregation".
 *
 * Plain SecAgg costs O(n) mask expansions per client and O(n·d) for the server: the rows that
 * would take tens of minutes each are not run by default; they are printed as estimates from
 * the measured n = 100 row of the same m and dropout (client time ∝ n − 1; unmasking ∝ the
 * number of expansions), marked "est.".
 */
import os from 'node:os'
import { parseCommand, parseFlags, UsageError } from '../aggregator/cli/command.ts'
import { SecAggMode, SecAggStage } from '../protocol/secagg/index.ts'
import type { SimulationReport } from './secagg-sim.ts'
import { simulateSecAgg } from './secagg-sim.ts'
import { nonNegativeInteger, oneOf, positiveInteger } from './flags.ts'

interface Row {
  readonly mode: SecAggMode
  readonly n: number
  readonly m: number
  readonly dropout: number
  readonly report?: SimulationReport
  /** For rows not run: estimates. */
  readonly estimate?: { clientMs: number; unmaskMs: number; degree: number; threshold: number; bytes: number }
}

function fmtMs(ms: number): string {
  return ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : ms >= 100 ? `${ms.toFixed(0)} ms` : `${ms.toFixed(1)} ms`
}

/** Whether plain SecAgg runs in full by default (client work ∝ n², server ∝ n·d·m). */
function plainRunsByDefault(n: number, m: number): boolean {
  return n <= 100 || (n <= 500 && m <= 10_000)
}

const HELP = `Usage: npm run bench:secagg -- [options]

SecAgg+ against plain SecAgg, each against a plain sum of the same vectors, by cohort size n,
vector length m and dropout. Without options: every combination below (minutes); plain-SecAgg
rows too slow to run are estimated from the n = 100 row and marked "est.".

Options:
  --n N            clients (default 100, 500 and 1000)
  --m M            vector length (default 10000 and 100000)
  --dropout P      share of clients that drop out after ShareKeys, in [0, 1) (default 0, 0.1 and 0.3)
  --mode MODE      secagg+ or secagg (default both)
  --full           also run the plain-SecAgg rows estimated by default (hours)
  --seed N         seed of the simulated vectors and dropouts (default 1)
  -h, --help       this text`

interface Config {
  readonly ns: number[]
  readonly ms: number[]
  readonly drops: number[]
  readonly modes: SecAggMode[]
  readonly full: boolean
  readonly seed: number
}

const MODES: readonly SecAggMode[] = [SecAggMode.SecAggPlus, SecAggMode.SecAgg]

/** The command line as a config, or `help`; throws `UsageError` on a bad one. */
function parse(argv: string[]): Config | 'help' {
  const { values } = parseFlags({
    args: argv,
    strict: true,
    options: {
      full: { type: 'boolean' },
      n: { type: 'string' },
      m: { type: 'string' },
      dropout: { type: 'string' },
      mode: { type: 'string' },
      seed: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help === true) return 'help'
  const dropout = values.dropout === undefined ? null : Number(values.dropout)
  if (dropout !== null && !(dropout >= 0 && dropout < 1)) throw new UsageError(`--dropout must be in [0, 1), got ${values.dropout}`)
  const mode = oneOf(values.mode, MODES, 'mode')
  return {
    ns: values.n === undefined ? [100, 500, 1000] : [positiveInteger(values.n, 0, 'n')],
    ms: values.m === undefined ? [10_000, 100_000] : [positiveInteger(values.m, 0, 'm')],
    drops: dropout === null ? [0, 0.1, 0.3] : [dropout],
    modes: mode === undefined ? [...MODES] : [mode],
    full: values.full === true,
    seed: nonNegativeInteger(values.seed, 1, 'seed'),
  }
}

/** Entry point of `npm run bench:secagg`; returns the exit code (2 for a bad command line). */
export async function run(argv: string[]): Promise<number> {
  const config = parseCommand('npm run bench:secagg', HELP, () => parse(argv))
  if (typeof config === 'number') return config
  const { ns, ms, drops, modes, seed } = config
  const rows: Row[] = []
  const started = Date.now()
  // Warm up the JIT and WebCrypto once.
  await simulateSecAgg({ clients: 20, dim: 1000, dropout: 0.1, seed, mode: SecAggMode.SecAggPlus, dropoutStage: SecAggStage.MaskedInputCollection })

  for (const mode of modes) {
    for (const m of ms) {
      for (const dropout of drops) {
        for (const n of ns) {
          if (mode === SecAggMode.SecAgg && !config.full && !plainRunsByDefault(n, m)) {
            rows.push({ mode, n, m, dropout })
            continue
          }
          const t0 = Date.now()
          const report = await simulateSecAgg({ clients: n, dim: m, dropout, seed, mode, dropoutStage: SecAggStage.MaskedInputCollection })
          rows.push({ mode, n, m, dropout, report })
          console.error(
            `${mode} n=${n} m=${m} d=${dropout}: client ${fmtMs(report.clientMsMedian)}, unmask ${fmtMs(report.unmaskMs)}, exact ${report.exact} (${((Date.now() - t0) / 1000).toFixed(0)} s)`,
          )
        }
      }
    }
  }
  // Estimates for the plain-SecAgg rows not run, from the n = 100 row of the same m and dropout.
  const final = rows.map((row): Row => {
    if (row.report !== undefined) return row
    const base = rows.find((r) => r.report !== undefined && r.mode === row.mode && r.m === row.m && r.dropout === row.dropout && r.n === 100)?.report
    if (base === undefined) return row
    const expansions = (n: number, d: number): number => {
      const dropped = Math.round(d * n)
      return n - dropped + dropped * (n - dropped)
    }
    const threshold = Math.floor(0.05 * row.n) + 1
    return {
      ...row,
      estimate: {
        clientMs: (base.clientMsMedian * (row.n - 1)) / 99,
        unmaskMs: (base.unmaskMs * expansions(row.n, row.dropout)) / expansions(100, row.dropout),
        degree: row.n - 1,
        threshold,
        bytes: 4 * row.m + 16 + ((base.bytesPerClient - 4 * row.m - 16) * (row.n - 1)) / 99,
      },
    }
  })

  const header = [
    'mode',
    'n',
    'm',
    'dropout',
    'k',
    't',
    'survivors',
    'client (median)',
    'client (p95)',
    'server total',
    'server unmask',
    'plain sum',
    'server / plain',
    'upload / client',
    'upload / raw',
    'exact',
  ]
  const table = [header, header.map(() => '---')]
  for (const r of final) {
    const p = r.report
    if (p !== undefined) {
      table.push([
        p.mode,
        String(r.n),
        String(r.m),
        String(r.dropout),
        String(p.degree),
        String(p.threshold),
        String(p.survivors),
        fmtMs(p.clientMsMedian),
        fmtMs(p.clientMsP95),
        fmtMs(p.serverMs),
        fmtMs(p.unmaskMs),
        fmtMs(p.plainSumMs),
        `${(p.serverMs / Math.max(p.plainSumMs, 1e-3)).toFixed(0)}x`,
        `${(p.bytesPerClient / 1024).toFixed(1)} KiB`,
        `${p.uploadRatio.toFixed(3)}x`,
        p.exact ? 'yes' : `NO${p.error === undefined ? '' : ` (${p.error})`}`,
      ])
    } else if (r.estimate !== undefined) {
      const e = r.estimate
      table.push([
        r.mode,
        String(r.n),
        String(r.m),
        String(r.dropout),
        String(e.degree),
        String(e.threshold),
        '—',
        `est. ${fmtMs(e.clientMs)}`,
        '—',
        '—',
        `est. ${fmtMs(e.unmaskMs)}`,
        '—',
        '—',
        `est. ${(e.bytes / 1024).toFixed(1)} KiB`,
        `est. ${(e.bytes / (4 * r.m)).toFixed(3)}x`,
        'not run (too slow in full; --full runs it)',
      ])
    } else {
      table.push([r.mode, String(r.n), String(r.m), String(r.dropout), ...Array.from({ length: 11 }, () => '—'), 'not run'])
    }
  }
  const widths = header.map((_, c) => Math.max(...table.map((row) => (row[c] as string).length)))
  const lines = table.map((row) => `| ${row.map((cell, c) => (cell === '---' ? '-'.repeat(widths[c] as number) : cell.padEnd(widths[c] as number))).join(' | ')} |`)
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU'
  console.log(`Secure aggregation — ${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${cpu}, ${os.cpus().length} cores, ${((Date.now() - started) / 60_000).toFixed(1)} min\n`)
  console.log(lines.join('\n'))
  return final.every((r) => r.report === undefined || r.report.exact) ? 0 : 1
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = await run(process.argv.slice(2))
}
