/**
 * The aggregator's options, their defaults and their validation. `resolveOptions` is the one
 * place that turns what a caller (CLI, demo launcher, test) passed into a complete, checked
 * configuration; everything downstream reads only the resolved form.
 */
import type { FastifyServerOptions } from 'fastify'
import { HearthError } from '../protocol/errors.ts'
import { FrameKind } from '../protocol/frames.ts'
import { AggregationMode } from '../protocol/messages.ts'
import type { TrainingPlan } from '../protocol/messages.ts'
import { DEFAULT_MF_OPTIONS, mfSpec } from '../protocol/model-spec.ts'
import type { MfOptions, ModelSpec } from '../protocol/model-spec.ts'
import { resolveCluster } from './cluster/cluster-options.ts'
import type { ClusterOptions, ResolvedCluster } from './cluster/cluster-options.ts'
import { resolvePrivacy, resolveSampling } from './privacy/options.ts'
import type { PrivacyOptions, ResolvedPrivacy } from './privacy/options.ts'
import { FedAvg } from './rounds/fedavg.ts'
import { PlainSumStrategy } from './rounds/plain-sum.ts'
import { resolveSecAgg } from './rounds/secagg-options.ts'
import type { ResolvedSecAgg, SecAggOptions } from './rounds/secagg-options.ts'
import type { AggregationStrategy, ServerOptimizer } from './rounds/strategy.ts'
import type { AggregatorStore, SamplingConfig } from './store/store.ts'

/** The app key accepted when none is configured. Development only: a warning is logged. */
export const DEV_APP_KEY = 'dev-app-key'

/** A model to serve, built with the default architecture (`mfSpec`). */
export interface ModelOptions {
  /** URL-safe name: letters, digits, `.`, `_`, `-`; at most 64 characters. */
  readonly name: string
  /** Architecture options. Default `DEFAULT_MF_OPTIONS`. */
  readonly mf?: MfOptions
}

/** How rounds run. Every field is optional; the defaults suit a small deployment. */
export interface RoundOptions {
  /**
   * Fewest clients a round needs: selection waits for this many checked-in sessions, and a
   * round publishes only with at least this many accepted uploads. Default 3.
   */
  readonly minCohort?: number
  /** Most clients selected for one round. Default 50. */
  readonly maxCohort?: number
  /**
   * Once `minCohort` sessions wait, how long selection keeps the round open for more of them
   * (up to `maxCohort`) before it selects. Default 5 000 ms.
   */
  readonly selectionTimeoutMs?: number
  /** Time participants have to train and upload, from the round plan. Default 120 000 ms. */
  readonly uploadTimeoutMs?: number
  /** Pause between the end of a round and the next selection. Default 5 000 ms. */
  readonly pauseMs?: number
  /**
   * How often the pool is checked for a new round, besides each check-in and the end of each
   * pause. Default 1 000 ms.
   */
  readonly checkIntervalMs?: number
  /** Local training settings sent in each round plan. */
  readonly training?: Partial<TrainingPlan>
  /**
   * Rejects an update whose L2 norm exceeds this bound (`HEARTH_ERR_VECTOR_VALUE`). Off by
   * default: in plain averaging nothing else bounds one client's influence, so set it in
   * production unless `privacy` is on (then the clip norm bounds every update).
   */
  readonly maxUpdateNorm?: number
  /**
   * How the cohort is drawn from the sessions waiting at selection (`rounds/selection.ts`).
   * Default `{kind: 'uniform'}`: min(maxCohort, n) without replacement, which the privacy
   * accountant charges as q = 1 (no amplification claimed). `{kind: 'poisson', rate: q}`: each
   * waiting session independently with probability q, uncapped; the accountant then uses q.
   */
  readonly sampling?: SamplingConfig
  /**
   * Differential privacy for every model's rounds (`privacy/options.ts`): clipping on the
   * clients, noise on the aggregator, a ledger and a budget per model. Default off.
   */
  readonly privacy?: PrivacyOptions
  /**
   * How uploads are combined. Default {@link PlainSumStrategy} (sum in the clear). Secure
   * aggregation replaces it and differential privacy wraps it (STYLE.md #8).
   */
  readonly strategy?: AggregationStrategy
  /**
   * How the aggregate updates the model. Default {@link FedAvg}. A stateful one (FedAdam and
   * kin) is a template: its state is kept per model, stored with each version it publishes.
   */
  readonly optimizer?: ServerOptimizer
  /**
   * `plain` (the default): float32 deltas summed in the clear. `secagg`: secure aggregation
   * (Bonawitz et al. 2017 / SecAgg+ of Bell et al. 2020), the aggregator sees only group sums.
   */
  readonly aggregation?: AggregationMode
  /** Secure-aggregation settings, used when `aggregation` is `secagg`. */
  readonly secagg?: SecAggOptions
  /**
   * `auto` (the default): each model's engine opens rounds by itself whenever enough devices
   * wait; a round started through the admin API goes first. `manual`: only rounds started
   * through the admin API (`POST /admin/rounds/:id/start`) run.
   */
  readonly schedule?: RoundSchedule
}

/** Who opens rounds: the engine by itself (`auto`), or operators only (`manual`). */
export type RoundSchedule = 'auto' | 'manual'

/** Options of {@link buildApp} and `startAggregator`. All optional. */
export interface AggregatorOptions {
  /** Directory holding `aggregator.db`; created if missing. Default `.hearth`. */
  readonly dataDir?: string
  /** Interface to listen on (`startAggregator` only). Default `127.0.0.1`. */
  readonly host?: string
  /** Port to listen on, 0 for any free one (`startAggregator` only). Default 8787. */
  readonly port?: number
  /**
   * App keys clients must present at check-in. Default `[DEV_APP_KEY]`, with a warning log:
   * anyone who knows the default key can take part in rounds.
   */
  readonly appKeys?: readonly string[]
  /**
   * Bearer token for `/admin/*`. When unset the admin API is open (a warning is logged); set it
   * anywhere but a developer machine.
   */
  readonly adminToken?: string
  /**
   * Origins allowed to call the client endpoints from a browser (exact matches such as
   * `https://shop.example`). Also checked against the `Origin` of WebSocket upgrades, which
   * browsers do not guard with CORS. When unset every origin is allowed, which suits
   * development only (a warning is logged).
   */
  readonly corsOrigins?: readonly string[]
  /** Models to serve. Default one model named `default` with `DEFAULT_MF_OPTIONS`. */
  readonly models?: readonly ModelOptions[]
  readonly rounds?: RoundOptions
  /**
   * Per-address limit on the client endpoints (`plugins/rate-limit.ts`): HTTP requests to
   * `/v1/...` and round-socket upgrades are each counted on their own. Default
   * {@link DEFAULT_RATE_LIMIT}; `false` turns it off (a warning is logged). Behind a proxy, set
   * `trustProxy` too, or every client shares the proxy's address and its limit.
   */
  readonly rateLimit?: RateLimitOptions | false
  /**
   * Which proxies' `X-Forwarded-For` to believe for the client address (Fastify's `trustProxy`):
   * `true` for any, or the proxies' addresses and CIDR ranges. Default `false`: the socket's peer.
   */
  readonly trustProxy?: boolean | string | readonly string[]
  /** Fastify's logger option (pino). Default `false`; the CLI logs at `info`. */
  readonly logger?: FastifyServerOptions['logger']
  /**
   * A store to use instead of the SQLite file under `dataDir`: an open one, or
   * `{ postgres: url }` to connect to PostgreSQL (`store/pg-store.ts`). The app closes it on close.
   */
  readonly store?: AggregatorStore | PostgresLocation
  /**
   * Run as one replica of several sharing the PostgreSQL store (`cluster/`): rounds draw their
   * cohort from every replica's sessions, each replica runs the secure-aggregation groups of its
   * own clients, and one replica per model coordinates. Needs `store: { postgres }` and
   * `rounds.aggregation: 'secagg'`. Default off.
   */
  readonly cluster?: ClusterOptions | boolean
}

/** At most `max` requests per `timeWindowMs` from one client address. */
export interface RateLimitOptions {
  readonly max: number
  readonly timeWindowMs: number
}

/**
 * 600 per minute per address and endpoint group. A device makes a few requests per round
 * (`latest`, then the version it lacks) and keeps one socket open, so this leaves room for
 * hundreds of devices behind one NAT address while a flood from one host is cut off within a
 * second's worth of requests.
 */
export const DEFAULT_RATE_LIMIT: RateLimitOptions = { max: 600, timeWindowMs: 60_000 }

/** A PostgreSQL database to keep the aggregator's state in, by `postgres://` URL. */
export interface PostgresLocation {
  readonly postgres: string
}

/** Resolved round settings. */
export interface ResolvedRoundOptions {
  readonly minCohort: number
  readonly maxCohort: number
  readonly selectionTimeoutMs: number
  readonly uploadTimeoutMs: number
  readonly pauseMs: number
  readonly checkIntervalMs: number
  readonly training: TrainingPlan
  /** The aggregation strategy; with `privacy`, the one the DP wrapper wraps each round. */
  readonly strategy: AggregationStrategy
  readonly optimizer: ServerOptimizer
  readonly sampling: SamplingConfig
  /** Null when differential privacy is off. */
  readonly privacy: ResolvedPrivacy | null
  /** Null for plain aggregation. */
  readonly secagg: ResolvedSecAgg | null
  readonly schedule: RoundSchedule
}

/** Options after defaults and validation. */
export interface ResolvedOptions {
  readonly dataDir: string
  readonly host: string
  readonly port: number
  readonly appKeys: readonly string[]
  readonly adminToken: string | undefined
  readonly corsOrigins: readonly string[] | undefined
  readonly models: readonly { readonly name: string; readonly spec: ModelSpec }[]
  readonly rounds: ResolvedRoundOptions
  readonly rateLimit: RateLimitOptions | false
  readonly trustProxy: boolean | string | readonly string[]
  readonly logger: FastifyServerOptions['logger']
  readonly store: AggregatorStore | PostgresLocation | undefined
  /** Null unless this process is one replica of a cluster. */
  readonly cluster: ResolvedCluster | null
  /** Insecure development defaults in use, to be logged as warnings at startup. */
  readonly warnings: readonly string[]
}

// Clients run plain SGD in rounds (worker/core.ts); on the hashed embeddings a step of 1 learns in a
// few rounds where 0.05 barely moves (measured on a 12-device toy federation, test/worker).
export const DEFAULT_TRAINING: TrainingPlan = { epochs: 1, batchSize: 32, learningRate: 1, maxExamples: 1000 }

const MODEL_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/
// setTimeout clamps anything above 2^31 - 1 ms to 1 ms (Node docs, "setTimeout").
const MAX_TIMER_MS = 2 ** 31 - 1

/** Applies defaults and validates; throws `HEARTH_ERR_INVALID_CONFIG` naming the bad option. */
export function resolveOptions(options: AggregatorOptions = {}): ResolvedOptions {
  const warnings: string[] = []

  const appKeys = options.appKeys ?? [DEV_APP_KEY]
  if (options.appKeys === undefined) {
    warnings.push(`no app keys configured: accepting the development key "${DEV_APP_KEY}"`)
  }
  if (appKeys.length === 0) invalid('appKeys', 'must hold at least one key')
  for (const key of appKeys) {
    if (typeof key !== 'string' || key.length === 0 || key.length > 256) invalid('appKeys', 'keys must be 1 to 256 characters')
  }

  const adminToken = options.adminToken
  if (adminToken === undefined) warnings.push('no admin token configured: /admin is open to anyone who can reach it')
  else if (adminToken.length < 16) invalid('adminToken', 'must be at least 16 characters')

  const corsOrigins = options.corsOrigins
  if (corsOrigins === undefined) warnings.push('no CORS origins configured: every origin may call the client endpoints')
  else {
    for (const origin of corsOrigins) {
      if (!/^https?:\/\/[^/\s]+$/.test(origin)) invalid('corsOrigins', `"${origin}" is not an origin like https://app.example`)
    }
  }

  const models = (options.models ?? [{ name: 'default' }]).map((model) => {
    if (!MODEL_NAME.test(model.name)) invalid('models', `name "${model.name}" must match ${MODEL_NAME}`)
    try {
      return { name: model.name, spec: mfSpec(model.name, model.mf ?? DEFAULT_MF_OPTIONS) }
    } catch (error) {
      return invalid(`models.${model.name}.mf`, (error as Error).message)
    }
  })
  if (models.length === 0) invalid('models', 'must name at least one model')
  if (new Set(models.map((m) => m.name)).size !== models.length) invalid('models', 'names must be unique')

  const port = options.port ?? 8787
  if (!Number.isInteger(port) || port < 0 || port > 65535) invalid('port', `must be an integer in [0, 65535], got ${port}`)
  if (options.store !== undefined && 'postgres' in options.store && !/^postgres(ql)?:\/\//.test(options.store.postgres)) {
    invalid('store.postgres', 'must be a URL like postgres://user:password@host:5432/database')
  }

  const rateLimit = options.rateLimit ?? DEFAULT_RATE_LIMIT
  if (rateLimit === false) warnings.push('rate limiting is off: one client address may send any number of requests')
  else {
    integer('rateLimit.max', rateLimit.max, 1, 1_000_000_000)
    integer('rateLimit.timeWindowMs', rateLimit.timeWindowMs, 1, MAX_TIMER_MS)
  }
  const trustProxy = options.trustProxy ?? false
  if (typeof trustProxy !== 'boolean') {
    const entries = typeof trustProxy === 'string' ? [trustProxy] : trustProxy
    if (entries.length === 0 || entries.some((entry) => typeof entry !== 'string' || entry.trim() === '')) {
      invalid('trustProxy', 'must name at least one address or CIDR range')
    }
  }

  const rounds = resolveRounds(options.rounds ?? {})
  const cluster = resolveCluster(options.cluster, {
    postgres: options.store !== undefined && 'postgres' in options.store ? options.store.postgres : undefined,
    secureAggregation: rounds.secagg !== null,
    privacy: rounds.privacy !== null,
  })

  return {
    dataDir: options.dataDir ?? '.hearth',
    host: options.host ?? '127.0.0.1',
    port,
    appKeys,
    adminToken,
    corsOrigins,
    models,
    rounds,
    rateLimit,
    trustProxy,
    logger: options.logger ?? false,
    store: options.store,
    cluster,
    warnings,
  }
}

function resolveRounds(rounds: RoundOptions): ResolvedRoundOptions {
  const minCohort = integer('rounds.minCohort', rounds.minCohort ?? 3, 1, 100_000)
  const maxCohort = integer('rounds.maxCohort', rounds.maxCohort ?? 50, minCohort, 100_000)
  const training = { ...DEFAULT_TRAINING, ...rounds.training }
  integer('rounds.training.epochs', training.epochs, 1, 1000)
  integer('rounds.training.batchSize', training.batchSize, 1, 1_000_000)
  integer('rounds.training.maxExamples', training.maxExamples, 1, 100_000_000)
  if (!Number.isFinite(training.learningRate) || training.learningRate <= 0) {
    invalid('rounds.training.learningRate', `must be a positive number, got ${training.learningRate}`)
  }
  if (rounds.maxUpdateNorm !== undefined && !(rounds.maxUpdateNorm > 0)) {
    invalid('rounds.maxUpdateNorm', `must be a positive number, got ${rounds.maxUpdateNorm}`)
  }
  if (rounds.strategy !== undefined && rounds.maxUpdateNorm !== undefined) {
    invalid('rounds.maxUpdateNorm', 'applies to the default strategy only; configure a custom strategy directly')
  }
  const sampling = resolveSampling(rounds.sampling)
  const schedule = rounds.schedule ?? 'auto'
  if (schedule !== 'auto' && schedule !== 'manual') invalid('rounds.schedule', `must be auto or manual, got ${String(schedule)}`)
  const uploadTimeoutMs = integer('rounds.uploadTimeoutMs', rounds.uploadTimeoutMs ?? 120_000, 1, MAX_TIMER_MS)
  const secagg = resolveAggregation(rounds, minCohort, uploadTimeoutMs)
  let privacy: ResolvedPrivacy | null = null
  if (rounds.privacy !== undefined) {
    if (rounds.maxUpdateNorm !== undefined) invalid('rounds.maxUpdateNorm', 'must be unset with privacy: the clip norm bounds every update')
    if (rounds.strategy !== undefined && rounds.strategy.frameKind !== FrameKind.Update) {
      invalid('rounds.strategy', `central DP wraps a strategy of plain Update frames; ${rounds.strategy.name} takes kind ${rounds.strategy.frameKind}`)
    }
    privacy = resolvePrivacy(rounds.privacy, { sampling, minCohort, maxCohort, secagg })
  }
  return {
    minCohort,
    maxCohort,
    selectionTimeoutMs: integer('rounds.selectionTimeoutMs', rounds.selectionTimeoutMs ?? 5_000, 1, MAX_TIMER_MS),
    uploadTimeoutMs,
    pauseMs: integer('rounds.pauseMs', rounds.pauseMs ?? 5_000, 0, MAX_TIMER_MS),
    checkIntervalMs: integer('rounds.checkIntervalMs', rounds.checkIntervalMs ?? 1_000, 1, MAX_TIMER_MS),
    training,
    strategy: rounds.strategy ?? new PlainSumStrategy({ maxNorm: rounds.maxUpdateNorm }),
    optimizer: rounds.optimizer ?? new FedAvg(),
    sampling,
    privacy,
    secagg,
    schedule,
  }
}

/** The secure-aggregation settings when `rounds.aggregation` asks for them, else null. */
function resolveAggregation(rounds: RoundOptions, minCohort: number, uploadTimeoutMs: number): ResolvedSecAgg | null {
  const mode = rounds.aggregation ?? AggregationMode.Plain
  if (mode === AggregationMode.Plain) {
    if (rounds.secagg !== undefined) invalid('rounds.secagg', "applies only with rounds.aggregation 'secagg'")
    return null
  }
  if (mode !== AggregationMode.SecAgg) invalid('rounds.aggregation', `must be plain or secagg, got ${String(mode)}`)
  if (rounds.strategy !== undefined) invalid('rounds.strategy', 'cannot be combined with secure aggregation, which is the strategy')
  if (rounds.maxUpdateNorm !== undefined) invalid('rounds.maxUpdateNorm', 'must be unset with secure aggregation: rounds.secagg.clipNorm bounds every update')
  if (rounds.privacy !== undefined && rounds.secagg?.clipNorm !== undefined) {
    invalid('rounds.secagg.clipNorm', 'must be unset with privacy: rounds.privacy.clipNorm bounds every update')
  }
  // A group needs at least 3 clients (protocol/secagg/groups.ts).
  if (minCohort < 3) invalid('rounds.minCohort', `must be at least 3 with secure aggregation, got ${minCohort}`)
  return resolveSecAgg(rounds.secagg ?? {}, uploadTimeoutMs)
}

function integer(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) invalid(name, `must be an integer in [${min}, ${max}], got ${value}`)
  return value
}

function invalid(option: string, detail: string): never {
  throw new HearthError('HEARTH_ERR_INVALID_CONFIG', `${option} ${detail}`)
}
