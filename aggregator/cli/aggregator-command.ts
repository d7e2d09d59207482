/**
 * `hearth aggregator start [options]`: runs the aggregator until SIGINT or SIGTERM.
 *
 * Secrets can come from the environment instead of the command line, where `ps` would show
 * them: `HEARTH_APP_KEYS` (comma-separated), `HEARTH_ADMIN_TOKEN` and `HEARTH_POSTGRES_URL` (its
 * password).
 */
import { readFileSync } from 'node:fs'
import type { ParseArgsConfig } from 'node:util'
import { HearthError } from '../../protocol/errors.ts'
import { parseRoundDocument, roundDocumentHash } from '../config/round-document.ts'
import { roundOptionsFromDocument } from '../config/round-options.ts'
import type { AggregationMode, TrainingPlan } from '../../protocol/messages.ts'
import type { SecAggMode } from '../../protocol/secagg/params.ts'
import { DEFAULT_RATE_LIMIT } from '../options.ts'
import type { AggregatorOptions, ModelOptions, RateLimitOptions, RoundOptions } from '../options.ts'
import { DEFAULT_PRIVACY_BUDGET } from '../privacy/options.ts'
import type { PrivacyOptions } from '../privacy/options.ts'
import type { SecAggOptions } from '../rounds/secagg-options.ts'
import { startAggregator } from '../server.ts'
import { parseCommand, parseFlags, parseSubcommand, UsageError } from './command.ts'

export const USAGE = `Usage: hearth aggregator start [options]

Runs the federated-averaging aggregator until interrupted (SIGINT or SIGTERM).

Options:
  --port <n>                 port to listen on, 0 for any free port (default 8787)
  --host <addr>              interface to listen on (default 127.0.0.1)
  --data-dir <dir>           where aggregator.db lives (default .hearth)
  --postgres <url>           keep state in PostgreSQL instead of aggregator.db, e.g.
                             postgres://user:password@host:5432/hearth (env HEARTH_POSTGRES_URL)
  --cluster                  run as one of several replicas on that PostgreSQL, splitting each
                             round's secure-aggregation groups (needs --postgres and secure
                             aggregation; aggregator/README.md, "Several replicas")
  --heartbeat <ms>           cluster heartbeat and polling period (default 1000)
  --replica-timeout <ms>     a replica silent this long is taken for dead (default 5 heartbeats)
  --app-key <key>            app key clients must present; repeatable
                             (env HEARTH_APP_KEYS, comma-separated; default: dev key, with a warning)
  --admin-token <token>      bearer token for /admin (env HEARTH_ADMIN_TOKEN; default: admin open)
  --cors-origin <origin>     browser origin allowed to call the client API; repeatable
                             (default: every origin, for development)
  --rate-limit <n|off>       requests per window and client address to /v1 and, counted
                             apart, round-socket connections (default 600; off: no limit)
  --rate-window <ms>         the window of --rate-limit (default 60000)
  --trust-proxy <addr>       a proxy (IP or CIDR) whose X-Forwarded-For names the client, for
                             the rate limit and logs; repeatable (default: none)
  --model <name[:BxD]>       model to serve, with B hash buckets and embedding width D; repeatable
                             (default: "default" with 4096x16)
  --schedule <mode>          auto: rounds open whenever enough devices wait, rounds started
                             through the admin API first; manual: only rounds started through
                             the admin API run (hearth rounds create/start) (default auto)
  --config <file>            a round configuration document (JSON, docs/round-config.md) instead
                             of the round flags below; its model is served
  --min-cohort <n>           fewest clients per round (default 3)
  --max-cohort <n>           most clients per round (default 50)
  --selection-timeout <ms>   how long selection waits for more clients (default 5000)
  --upload-timeout <ms>      time participants get to train and upload (default 120000)
  --pause <ms>               pause between rounds (default 5000)
  --max-update-norm <x>      reject updates with a larger L2 norm (default: no bound)
  --sampling-rate <q>        Poisson sampling: each waiting session joins with probability q,
                             and the privacy accountant uses q (default: uniform sampling of
                             max-cohort sessions, accounted as q = 1)
  --dp <mode>                differential privacy: central, or distributed (devices add the
                             noise; needs --aggregation secagg) (default: off)
  --clip-norm <x>            with --dp: L2 clip norm C of each update
  --noise-multiplier <z>     with --dp: noise standard deviation over C
  --budget-epsilon <x>       with --dp: each model's epsilon budget (default 8)
  --budget-delta <x>         with --dp: each model's delta (default 1e-6)
  --expected-cohort <n>      with --dp: fixed denominator of the mean (default max-cohort;
                             required with --sampling-rate)
  --adaptive-clipping        with --dp: move C toward a quantile of update norms
  --target-quantile <x>      with --adaptive-clipping: the quantile (default 0.5)
  --mechanism <m>            with --dp distributed: discrete-gaussian (default) or skellam
  --min-survivors <n>        with --dp distributed: fewest devices a published group sum holds
                             (default from --expected-dropout)
  --aggregation <mode>       plain or secagg (secure aggregation; default plain)
  --secagg-variant <v>       with secagg: secagg+ (sparse graph, default) or secagg
  --secagg-clip-norm <x>     with secagg: L2 norm devices clip to before quantizing (default 10)
  --expected-dropout <x>     with secagg: expected dropout fraction, for k and t (default 0.1)
  --corrupt-fraction <x>     with secagg: tolerated corrupt fraction, for k and t (default 0.05)
  --max-group-size <n>       with secagg: largest group (default 500)
  --epochs <n>               local epochs per round (default 1)
  --batch-size <n>           local batch size (default 32)
  --learning-rate <x>        local learning rate (default 1)
  --max-examples <n>         most local examples per round (default 1000)
  --log-level <level>        fatal, error, warn, info, debug or trace (default info)
  -h, --help                 show this help`

const OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  port: { type: 'string' },
  host: { type: 'string' },
  'data-dir': { type: 'string' },
  postgres: { type: 'string' },
  cluster: { type: 'boolean' },
  heartbeat: { type: 'string' },
  'replica-timeout': { type: 'string' },
  'app-key': { type: 'string', multiple: true },
  'admin-token': { type: 'string' },
  'cors-origin': { type: 'string', multiple: true },
  'rate-limit': { type: 'string' },
  'rate-window': { type: 'string' },
  'trust-proxy': { type: 'string', multiple: true },
  model: { type: 'string', multiple: true },
  config: { type: 'string' },
  schedule: { type: 'string' },
  'min-cohort': { type: 'string' },
  'max-cohort': { type: 'string' },
  'selection-timeout': { type: 'string' },
  'upload-timeout': { type: 'string' },
  pause: { type: 'string' },
  'max-update-norm': { type: 'string' },
  'sampling-rate': { type: 'string' },
  dp: { type: 'string' },
  'clip-norm': { type: 'string' },
  'noise-multiplier': { type: 'string' },
  'budget-epsilon': { type: 'string' },
  'budget-delta': { type: 'string' },
  'expected-cohort': { type: 'string' },
  'adaptive-clipping': { type: 'boolean' },
  'target-quantile': { type: 'string' },
  mechanism: { type: 'string' },
  'min-survivors': { type: 'string' },
  aggregation: { type: 'string' },
  'secagg-variant': { type: 'string' },
  'secagg-clip-norm': { type: 'string' },
  'expected-dropout': { type: 'string' },
  'corrupt-fraction': { type: 'string' },
  'max-group-size': { type: 'string' },
  epochs: { type: 'string' },
  'batch-size': { type: 'string' },
  'learning-rate': { type: 'string' },
  'max-examples': { type: 'string' },
  'log-level': { type: 'string' },
} as const satisfies ParseArgsConfig['options']

const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace'])

/** What `start` was asked to do: `help`, or start with these options. */
export type StartCommand =
  | { readonly help: true }
  | {
      readonly help: false
      readonly options: AggregatorOptions
      /** SHA-256 of the round configuration document, when `--config` gave one (for the audit trail). */
      readonly configHash?: string
    }

/** Parses the arguments after `hearth aggregator start`. Throws {@link UsageError}. */
export function parseStartArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): StartCommand {
  const { values } = parseFlags({ args: [...argv], options: OPTIONS, strict: true, allowPositionals: false })
  if (values.help === true) return { help: true }

  const document = values.config === undefined ? undefined : readRoundDocument(values.config, values)
  const training: Partial<{ -readonly [K in keyof TrainingPlan]: number }> = {}
  if (values.epochs !== undefined) training.epochs = int('--epochs', values.epochs)
  if (values['batch-size'] !== undefined) training.batchSize = int('--batch-size', values['batch-size'])
  if (values['learning-rate'] !== undefined) training.learningRate = num('--learning-rate', values['learning-rate'])
  if (values['max-examples'] !== undefined) training.maxExamples = int('--max-examples', values['max-examples'])

  const rounds: { -readonly [K in keyof RoundOptions]: RoundOptions[K] } = { training }
  if (values['min-cohort'] !== undefined) rounds.minCohort = int('--min-cohort', values['min-cohort'])
  if (values['max-cohort'] !== undefined) rounds.maxCohort = int('--max-cohort', values['max-cohort'])
  if (values['selection-timeout'] !== undefined) rounds.selectionTimeoutMs = int('--selection-timeout', values['selection-timeout'])
  if (values['upload-timeout'] !== undefined) rounds.uploadTimeoutMs = int('--upload-timeout', values['upload-timeout'])
  if (values.pause !== undefined) rounds.pauseMs = int('--pause', values.pause)
  if (values['max-update-norm'] !== undefined) rounds.maxUpdateNorm = num('--max-update-norm', values['max-update-norm'])
  if (values['sampling-rate'] !== undefined) rounds.sampling = { kind: 'poisson', rate: num('--sampling-rate', values['sampling-rate']) }
  const privacy = parsePrivacy(values)
  if (privacy !== undefined) rounds.privacy = privacy
  if (values.aggregation !== undefined) rounds.aggregation = values.aggregation as AggregationMode
  const secagg = parseSecAgg(values)
  if (secagg !== undefined) rounds.secagg = secagg

  const level = values['log-level'] ?? 'info'
  if (!LOG_LEVELS.has(level)) throw new UsageError(`--log-level must be one of ${[...LOG_LEVELS].join(', ')}`)

  const envKeys = env.HEARTH_APP_KEYS?.split(',').map((key) => key.trim()).filter((key) => key.length > 0)
  const appKeys = values['app-key'] ?? (envKeys !== undefined && envKeys.length > 0 ? envKeys : undefined)
  const adminToken = values['admin-token'] ?? (env.HEARTH_ADMIN_TOKEN || undefined)

  const schedule = values.schedule
  if (schedule !== undefined && schedule !== 'auto' && schedule !== 'manual') throw new UsageError(`--schedule must be auto or manual, got "${schedule}"`)
  const options: { -readonly [K in keyof AggregatorOptions]: AggregatorOptions[K] } = {
    rounds: { ...(document === undefined ? rounds : roundOptionsFromDocument(document)), ...(schedule === undefined ? {} : { schedule }) },
    logger: { level },
  }
  if (values.port !== undefined) options.port = int('--port', values.port)
  if (values.host !== undefined) options.host = values.host
  if (values['data-dir'] !== undefined) options.dataDir = values['data-dir']
  const postgres = values.postgres ?? (env.HEARTH_POSTGRES_URL || undefined)
  if (postgres !== undefined) {
    if (values['data-dir'] !== undefined) throw new UsageError('--data-dir and --postgres (or HEARTH_POSTGRES_URL) exclude each other')
    options.store = { postgres }
  }
  if ((values.heartbeat !== undefined || values['replica-timeout'] !== undefined) && values.cluster !== true) {
    throw new UsageError('--heartbeat and --replica-timeout need --cluster')
  }
  if (values.cluster === true) {
    options.cluster = {
      ...(values.heartbeat === undefined ? {} : { heartbeatMs: int('--heartbeat', values.heartbeat) }),
      ...(values['replica-timeout'] === undefined ? {} : { replicaTimeoutMs: int('--replica-timeout', values['replica-timeout']) }),
    }
  }
  if (appKeys !== undefined) options.appKeys = appKeys
  if (adminToken !== undefined) options.adminToken = adminToken
  if (values['cors-origin'] !== undefined) options.corsOrigins = values['cors-origin']
  const rateLimit = parseRateLimit(values['rate-limit'], values['rate-window'])
  if (rateLimit !== undefined) options.rateLimit = rateLimit
  if (values['trust-proxy'] !== undefined) options.trustProxy = values['trust-proxy']
  if (values.model !== undefined) options.models = values.model.map(parseModel)
  if (document !== undefined) {
    if (options.models === undefined) options.models = [{ name: document.model }]
    else if (!options.models.some((m) => m.name === document.model)) throw new UsageError(`--config names model "${document.model}", which no --model serves`)
  }
  return { help: false, options, ...(document === undefined ? {} : { configHash: roundDocumentHash(document) }) }
}


/** The `CommandModule` entry point: `argv` is what follows `hearth aggregator`. */
export async function run(argv: string[]): Promise<number> {
  const sub = parseSubcommand('hearth aggregator', USAGE, ['start'], argv)
  if (typeof sub === 'number') return sub
  const command = parseCommand('hearth aggregator start', USAGE, () => {
    const start = parseStartArgs(sub.argv)
    return start.help ? 'help' : start
  })
  if (typeof command === 'number') return command
  let handle
  try {
    handle = await startAggregator(command.options, { handleSignals: true })
    if (command.configHash !== undefined) handle.app.log.info({ configHash: command.configHash }, 'round configuration document')
  } catch (error) {
    if (error instanceof HearthError) throw error // bin/cli.ts prints the code
    console.error(`hearth aggregator start: ${(error as Error).message}`)
    return 1
  }
  await handle.closed
  return typeof process.exitCode === 'number' ? process.exitCode : 0
}

const DP_FLAGS = ['clip-norm', 'noise-multiplier', 'budget-epsilon', 'budget-delta', 'expected-cohort', 'adaptive-clipping', 'target-quantile', 'mechanism', 'min-survivors'] as const

/** The `--dp` flags as `rounds.privacy`; undefined without `--dp`. Values are checked by `resolveOptions`. */
function parsePrivacy(values: { readonly [K in keyof typeof OPTIONS]?: unknown }): PrivacyOptions | undefined {
  const mode = values.dp
  if (mode === undefined) {
    const stray = DP_FLAGS.find((flag) => values[flag] !== undefined)
    if (stray !== undefined) throw new UsageError(`--${stray} needs --dp`)
    return undefined
  }
  if (mode !== 'central' && mode !== 'distributed') throw new UsageError(`--dp must be central or distributed, got "${String(mode)}"`)
  const text = (flag: (typeof DP_FLAGS)[number]): string | undefined => (typeof values[flag] === 'string' ? (values[flag] as string) : undefined)
  const clipNorm = text('clip-norm')
  const noiseMultiplier = text('noise-multiplier')
  if (clipNorm === undefined) throw new UsageError('--dp needs --clip-norm')
  if (noiseMultiplier === undefined) throw new UsageError('--dp needs --noise-multiplier')
  const epsilon = text('budget-epsilon')
  const delta = text('budget-delta')
  const cohort = text('expected-cohort')
  const quantile = text('target-quantile')
  if (quantile !== undefined && values['adaptive-clipping'] !== true) throw new UsageError('--target-quantile needs --adaptive-clipping')
  const mechanism = text('mechanism')
  const survivors = text('min-survivors')
  if (mode === 'central' && (mechanism !== undefined || survivors !== undefined)) throw new UsageError('--mechanism and --min-survivors need --dp distributed')
  if (mechanism !== undefined && mechanism !== 'discrete-gaussian' && mechanism !== 'skellam') throw new UsageError(`--mechanism must be discrete-gaussian or skellam, got "${mechanism}"`)
  return {
    mode,
    clipNorm: num('--clip-norm', clipNorm),
    noiseMultiplier: num('--noise-multiplier', noiseMultiplier),
    ...(epsilon === undefined && delta === undefined
      ? {}
      : { budget: { epsilon: epsilon === undefined ? DEFAULT_PRIVACY_BUDGET.epsilon : num('--budget-epsilon', epsilon), delta: delta === undefined ? DEFAULT_PRIVACY_BUDGET.delta : num('--budget-delta', delta) } }),
    ...(cohort === undefined ? {} : { expectedCohortSize: int('--expected-cohort', cohort) }),
    ...(values['adaptive-clipping'] === true ? { adaptiveClipping: quantile === undefined ? true : { targetQuantile: num('--target-quantile', quantile) } } : {}),
    ...(mechanism === undefined ? {} : { mechanism }),
    ...(survivors === undefined ? {} : { minSurvivors: int('--min-survivors', survivors) }),
  }
}

const SECAGG_FLAGS = ['secagg-variant', 'secagg-clip-norm', 'expected-dropout', 'corrupt-fraction', 'max-group-size'] as const

/** The secure-aggregation flags as `rounds.secagg`; values are checked by `resolveOptions`. */
function parseSecAgg(values: { readonly [K in keyof typeof OPTIONS]?: unknown }): SecAggOptions | undefined {
  const given = SECAGG_FLAGS.filter((flag) => typeof values[flag] === 'string')
  if (given.length === 0) return undefined
  if (values.aggregation !== 'secagg') throw new UsageError(`--${given[0] as string} needs --aggregation secagg`)
  const text = (flag: (typeof SECAGG_FLAGS)[number]): string | undefined => values[flag] as string | undefined
  const variant = text('secagg-variant')
  const clipNorm = text('secagg-clip-norm')
  const dropout = text('expected-dropout')
  const corrupt = text('corrupt-fraction')
  const groupSize = text('max-group-size')
  return {
    ...(variant === undefined ? {} : { variant: variant as SecAggMode }),
    ...(clipNorm === undefined ? {} : { clipNorm: num('--secagg-clip-norm', clipNorm) }),
    ...(dropout === undefined ? {} : { expectedDropout: num('--expected-dropout', dropout) }),
    ...(corrupt === undefined ? {} : { corruptFraction: num('--corrupt-fraction', corrupt) }),
    ...(groupSize === undefined ? {} : { maxGroupSize: int('--max-group-size', groupSize) }),
  }
}

function int(flag: string, text: string): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`${flag} must be a non-negative integer, got "${text}"`)
  return Number(text)
}

function num(flag: string, text: string): number {
  const value = Number(text)
  if (text.trim() === '' || !Number.isFinite(value)) throw new UsageError(`${flag} must be a number, got "${text}"`)
  return value
}

/** `--rate-limit` and `--rate-window` as `rateLimit`; undefined leaves the default. */
function parseRateLimit(limit: string | undefined, window: string | undefined): RateLimitOptions | false | undefined {
  if (limit === 'off') {
    if (window !== undefined) throw new UsageError('--rate-window needs a numeric --rate-limit')
    return false
  }
  if (limit === undefined && window === undefined) return undefined
  return {
    max: limit === undefined ? DEFAULT_RATE_LIMIT.max : int('--rate-limit', limit),
    timeWindowMs: window === undefined ? DEFAULT_RATE_LIMIT.timeWindowMs : int('--rate-window', window),
  }
}

function parseModel(text: string): ModelOptions {
  const match = /^([^:]+)(?::(\d+)x(\d+))?$/.exec(text)
  if (match === null) throw new UsageError(`--model must look like name or name:4096x16, got "${text}"`)
  const [, name = '', buckets, dim] = match
  return buckets === undefined || dim === undefined ? { name } : { name, mf: { buckets: Number(buckets), dim: Number(dim) } }
}

// Every flag that sets a round option: a configuration document replaces them all.
const ROUND_FLAGS = [
  'min-cohort', 'max-cohort', 'selection-timeout', 'upload-timeout', 'pause', 'max-update-norm', 'sampling-rate', 'dp',
  'aggregation', 'epochs', 'batch-size', 'learning-rate', 'max-examples', ...DP_FLAGS, ...SECAGG_FLAGS,
] as const

/** Reads and validates `--config`; a refused document throws its `RoundDocumentError` (every problem listed). */
function readRoundDocument(file: string, values: Readonly<Record<string, unknown>>): ReturnType<typeof parseRoundDocument> {
  const mixed = ROUND_FLAGS.filter((flag) => values[flag] !== undefined)
  if (mixed.length > 0) throw new UsageError(`--config replaces the round flags; remove ${mixed.map((f) => `--${f}`).join(', ')}`)
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (error) {
    throw new UsageError(`cannot read --config ${file}: ${(error as Error).message}`)
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (error) {
    throw new UsageError(`--config ${file} is not JSON: ${(error as Error).message}`)
  }
  return parseRoundDocument(json)
}
