/**
 * `hearth privacy`: the privacy accountant on the command line.
 *
 *   hearth privacy epsilon --sampling-rate Q --noise-multiplier Z --rounds T --delta D [--devices N] [--json]
 *   hearth privacy noise   --sampling-rate Q --rounds T --epsilon E --delta D [--tolerance X] [--devices N] [--json]
 *
 * With `--devices N` both also say what the noise costs a federation of N devices: the expected
 * cohort m = QN, the noise on the mean (z/m per coordinate, in units of the clip norm) and the
 * signal-to-noise of T rounds' total step, √T·m/z (aggregator/README.md, "How many devices DP
 * needs").
 *
 * Exit codes: 0 done, 2 bad usage (missing or invalid option).
 */
import { parseCommand, parseFlags, UsageError } from '../aggregator/cli/command.ts'
import { noiseMultiplierForEpsilon, sampledGaussianEpsilon } from '../protocol/dp/accountant.ts'

const USAGE = `Usage:
  hearth privacy epsilon --sampling-rate Q --noise-multiplier Z --rounds T --delta D [--devices N] [--json]
      ε of T rounds of the Poisson-sampled Gaussian mechanism (RDP, dp_accounting's orders).
  hearth privacy noise --sampling-rate Q --rounds T --epsilon E --delta D [--tolerance X] [--devices N] [--json]
      The smallest noise multiplier meeting (ε, δ) (bisection, relative tolerance X, default 1e-6).

Options:
  --sampling-rate Q      probability that a user takes part in a round, 0 <= Q <= 1
  --noise-multiplier Z   noise standard deviation / L2 clipping norm, Z >= 0
  --rounds T             number of rounds, an integer >= 0
  --delta D              target δ, 0 < D < 1
  --epsilon E            target ε > 0
  --devices N            the federation's size: also print the expected cohort m = QN, the noise
                         on the mean (z/m, in units of the clip norm) and the signal-to-noise of
                         the T rounds' total step, sqrt(T)·m/z
  --json                 print one JSON object instead of a sentence`

type Values = Record<string, string | boolean | undefined>

function requireNumber(values: Values, name: string, check: (x: number) => boolean, rule: string): number {
  const raw = values[name]
  if (raw === undefined) throw new UsageError(`missing --${name}`)
  if (typeof raw !== 'string' || raw.trim() === '') throw new UsageError(`--${name} needs a value`)
  const x = Number(raw)
  if (!Number.isFinite(x) || !check(x)) throw new UsageError(`--${name} must be ${rule}, got "${raw}"`)
  return x
}

const samplingRate = (v: Values): number => requireNumber(v, 'sampling-rate', (x) => x >= 0 && x <= 1, 'a number in [0, 1]')
const rounds = (v: Values): number => requireNumber(v, 'rounds', (x) => Number.isSafeInteger(x) && x >= 0, 'an integer >= 0')
const delta = (v: Values): number => requireNumber(v, 'delta', (x) => x > 0 && x < 1, 'a number in (0, 1)')

/** What a subcommand found: printed as `object` with `--json`, else as `sentence`. */
interface Answer {
  readonly object: Record<string, number>
  readonly sentence: string
}

/**
 * `answer` extended with what noise multiplier `z` costs `--devices N` devices, when given: the
 * noise on the mean is z·C/m a coordinate and round, and T rounds' steps add up signal T·C
 * against noise √T·z·C/m.
 */
function withFederation(values: Values, answer: Answer, q: number, z: number, t: number): Answer {
  if (values.devices === undefined) return answer
  const n = requireNumber(values, 'devices', (x) => Number.isSafeInteger(x) && x >= 1, 'an integer >= 1')
  const cohort = q * n
  const noiseOnMean = cohort === 0 ? Infinity : z / cohort
  const signalToNoise = z === 0 ? Infinity : (Math.sqrt(t) * cohort) / z
  return {
    object: { ...answer.object, devices: n, expectedCohort: cohort, noiseOnMean, signalToNoise },
    sentence: `${answer.sentence}; with ${n} devices: expected cohort ${cohort.toPrecision(6)}, noise on the mean ${noiseOnMean.toPrecision(4)} x the clip norm per coordinate and round, signal-to-noise after ${t} rounds ${signalToNoise.toPrecision(5)}`,
  }
}

function answerEpsilon(values: Values): Answer {
  const q = samplingRate(values)
  const z = requireNumber(values, 'noise-multiplier', (x) => x >= 0, 'a number >= 0')
  const t = rounds(values)
  const d = delta(values)
  const { epsilon, order } = sampledGaussianEpsilon({ samplingRate: q, noiseMultiplier: z, rounds: t, delta: d })
  return withFederation(values, {
    object: { epsilon, order, delta: d, samplingRate: q, noiseMultiplier: z, rounds: t },
    sentence: `epsilon = ${epsilon.toPrecision(6)} at delta = ${d} (Renyi order ${order}) after ${t} rounds with sampling rate ${q} and noise multiplier ${z}`,
  }, q, z, t)
}

function answerNoise(values: Values): Answer {
  const q = samplingRate(values)
  const t = rounds(values)
  const e = requireNumber(values, 'epsilon', (x) => x > 0, 'a number > 0')
  const d = delta(values)
  const tolerance = values.tolerance === undefined ? 1e-6 : requireNumber(values, 'tolerance', (x) => x > 0 && x < 1, 'a number in (0, 1)')
  let result
  try {
    result = noiseMultiplierForEpsilon({ samplingRate: q, rounds: t, epsilon: e, delta: d, tolerance })
  } catch (error) {
    if (error instanceof RangeError) throw new UsageError(error.message)
    throw error
  }
  return withFederation(values, {
    object: { noiseMultiplier: result.noiseMultiplier, epsilon: result.epsilon, order: result.order, delta: d, samplingRate: q, rounds: t, tolerance },
    sentence: `noise multiplier = ${result.noiseMultiplier.toPrecision(7)} gives epsilon = ${result.epsilon.toPrecision(6)} <= ${e} at delta = ${d} (Renyi order ${result.order}) over ${t} rounds with sampling rate ${q}`,
  }, q, result.noiseMultiplier, t)
}

/** The answer to the command line `argv`, or `help`; throws a `UsageError` for a bad one (a target no noise reaches included). */
function answer(argv: string[]): { readonly answer: Answer; readonly json: boolean } | 'help' {
  const { values, positionals } = parseFlags({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      'sampling-rate': { type: 'string' },
      'noise-multiplier': { type: 'string' },
      rounds: { type: 'string' },
      delta: { type: 'string' },
      epsilon: { type: 'string' },
      tolerance: { type: 'string' },
      devices: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help === true) return 'help'
  const [sub, ...extra] = positionals
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`)
  const json = values.json === true
  if (sub === 'epsilon') return { answer: answerEpsilon(values), json }
  if (sub === 'noise') return { answer: answerNoise(values), json }
  throw new UsageError(sub === undefined ? 'missing subcommand (epsilon or noise)' : `unknown subcommand "${sub}"`)
}

/** Runs `hearth privacy …` with `argv` after the command name; returns the exit code. */
export async function run(argv: string[]): Promise<number> {
  const command = parseCommand('hearth privacy', USAGE, () => answer(argv))
  if (typeof command === 'number') return command
  console.log(command.json ? JSON.stringify(command.answer.object) : command.answer.sentence)
  return 0
}
