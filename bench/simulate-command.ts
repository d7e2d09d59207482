/**
 * `hearth simulate <what>`: runs a protocol in one process with simulated clients.
 *
 *   hearth simulate secagg --clients 1000 --dim 100000 --dropout 0.1 --seed 1 --json
 *
 * prints one JSON object (see `SimulationReport` in `secagg-sim.ts`), or a short text summary
 * without `--json`. Exit code 0 when the round completed and the sum was exact, 1 otherwise
 * (a value out of range included: HEARTH_ERR_INVALID_ARGUMENT), 2 for an unknown simulation,
 * an unknown flag or a missing value.
 */
import { parseCommand, parseFlags, parseSubcommand } from '../aggregator/cli/command.ts'
import { HearthError } from '../protocol/errors.ts'
import { PrgAlgorithm, SecAggMode, SecAggStage } from '../protocol/secagg/index.ts'
import { simulateSecAgg } from './secagg-sim.ts'

const USAGE = `Usage: hearth simulate secagg [options]

Runs one secure-aggregation round in this process (real protocol and cryptography).

Options:
  --clients N             clients in the round (default 100)
  --dim M                 vector length (default 10000)
  --dropout P             probability that a client drops out (default 0.1)
  --dropout-stage S       advertise-keys | share-keys | masked-input-collection | unmasking
                          | random (default masked-input-collection: after sharing keys)
  --seed S                seed of the simulation's choices, never of the cryptography (default 1)
  --mode M                secagg+ (default) or secagg
  --expected-dropout D    dropout rate the parameters are derived for (default: --dropout)
  --corrupt G             tolerated fraction of corrupt clients (default 0.05)
  --group-size G          largest group; larger rounds are split (default: one group)
  --bits B                modulus bits b, 1..32 (default 32)
  --prg P                 aes-256-ctr (default) or chacha20
  --consistency-check     run the optional ConsistencyCheck stage
  --json                  print one JSON object
  -h, --help              this text`

function invalid(detail: string): HearthError {
  return new HearthError('HEARTH_ERR_INVALID_ARGUMENT', detail)
}

function number(value: string | undefined, name: string, fallback: number, check: (v: number) => boolean): number {
  if (value === undefined) return fallback
  const v = Number(value)
  if (!Number.isFinite(v) || !check(v)) throw invalid(`--${name} ${value} is out of range`)
  return v
}

/** Entry point of `hearth simulate`. */
export async function run(argv: string[]): Promise<number> {
  const what = parseSubcommand('hearth simulate', USAGE, ['secagg'], argv)
  if (typeof what === 'number') return what
  const values = parseCommand('hearth simulate secagg', USAGE, () => {
    const { values } = parseFlags({
      args: what.argv,
      strict: true,
      options: {
        clients: { type: 'string' },
        dim: { type: 'string' },
        dropout: { type: 'string' },
        'dropout-stage': { type: 'string' },
        seed: { type: 'string' },
        mode: { type: 'string' },
        'expected-dropout': { type: 'string' },
        corrupt: { type: 'string' },
        'group-size': { type: 'string' },
        bits: { type: 'string' },
        prg: { type: 'string' },
        'consistency-check': { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    })
    return values.help === true ? 'help' : values
  })
  if (typeof values === 'number') return values
  const mode = values.mode ?? SecAggMode.SecAggPlus
  if (mode !== SecAggMode.SecAgg && mode !== SecAggMode.SecAggPlus) throw invalid(`--mode must be secagg or secagg+, got ${mode}`)
  const prg = values.prg ?? PrgAlgorithm.AesCtr
  if (prg !== PrgAlgorithm.AesCtr && prg !== PrgAlgorithm.ChaCha20) throw invalid(`--prg must be aes-256-ctr or chacha20, got ${prg}`)
  const stage = values['dropout-stage'] ?? SecAggStage.MaskedInputCollection
  const stages: readonly string[] = [...Object.values(SecAggStage), 'random']
  if (!stages.includes(stage)) throw invalid(`--dropout-stage must be one of ${stages.join(', ')}`)
  const clients = number(values.clients, 'clients', 100, (v) => Number.isInteger(v) && v >= 3)
  const dropout = number(values.dropout, 'dropout', 0.1, (v) => v >= 0 && v < 1)
  const groupSize = values['group-size'] === undefined ? undefined : number(values['group-size'], 'group-size', clients, (v) => Number.isInteger(v) && v >= 3)
  const expectedDropout = values['expected-dropout'] === undefined ? undefined : number(values['expected-dropout'], 'expected-dropout', dropout, (v) => v >= 0 && v < 1)
  const report = await simulateSecAgg({
    clients,
    dim: number(values.dim, 'dim', 10_000, (v) => Number.isInteger(v) && v >= 1 && v <= 2 ** 26),
    dropout,
    dropoutStage: stage as SecAggStage | 'random',
    seed: number(values.seed, 'seed', 1, (v) => Number.isInteger(v)),
    mode,
    corruptFraction: number(values.corrupt, 'corrupt', 0.05, (v) => v >= 0 && v < 1),
    modulusBits: number(values.bits, 'bits', 32, (v) => Number.isInteger(v) && v >= 1 && v <= 32),
    prg,
    consistencyCheck: values['consistency-check'] === true,
    ...(groupSize === undefined ? {} : { groupSize }),
    ...(expectedDropout === undefined ? {} : { expectedDropout }),
  })
  if (values.json === true) {
    console.log(JSON.stringify(report))
  } else {
    const lines = [
      `${report.mode}: ${report.clients} clients, m = ${report.dim}, dropout ${report.dropout} (seed ${report.seed})`,
      `groups: ${report.groups.map((g) => `${g.survivors}/${g.clients}${g.contributed ? '' : ' (aborted)'}`).join(', ')}; k = ${report.degree}, t = ${report.threshold}`,
      `exact: ${report.exact}; survivors ${report.survivors}`,
      `client median ${report.clientMsMedian.toFixed(1)} ms (p95 ${report.clientMsP95.toFixed(1)}); server ${report.serverMs.toFixed(0)} ms (unmasking ${report.unmaskMs.toFixed(0)}); plain sum ${report.plainSumMs.toFixed(1)} ms`,
      `upload ${report.bytesPerClient} bytes per client = ${report.uploadRatio.toFixed(3)} x the raw vector`,
      ...(report.error === undefined ? [] : [`error: ${report.error}`]),
    ]
    console.log(lines.join('\n'))
  }
  return report.completed && report.exact ? 0 : 1
}
