/**
 * Options of `Hearth.init()`, their defaults and their validation.
 */
import { HearthError } from '../protocol/errors.ts'
import type { TrainingPlan } from '../protocol/messages.ts'
import type { BackendName, PersonalizationOptions, TrainingBudget } from '../worker/api.ts'
import type { ServiceWorkerOptions } from './offline/service-worker-options.ts'

/** What an app passes to `Hearth.init()`. Only `aggregatorUrl` and `appKey` are required. */
export interface HearthOptions {
  /** Base URL of the aggregator, e.g. `https://fl.example.com`. `ws(s):` is derived from it. */
  readonly aggregatorUrl: string
  /** The app's public key for the aggregator's client endpoints. */
  readonly appKey: string
  /** The model this app personalizes with. Default `default`. */
  readonly model?: string
  /** Take part in federated rounds. Default `true`; when false no socket is ever opened. */
  readonly federated?: boolean
  /**
   * Where `hearth.worker.js` and the `wasm/` folder live (ends with `/`). Defaults to the folder
   * the Hearth script was loaded from.
   */
  readonly assetsBaseUrl?: string
  /** TensorFlow.js backends to try, in order. Default `['wasm', 'cpu']`. */
  readonly backends?: readonly BackendName[]
  /** IndexedDB database name. Default `hearth:<model>`. */
  readonly dbName?: string
  /** How long recorded events wait in memory before one batched write. Default 200 ms. */
  readonly flushIntervalMs?: number
  /**
   * Sensitive features and their consent categories, retention window, store limits and
   * exploration (`PersonalizationOptions`). Checked by the worker at start.
   */
  readonly personalization?: PersonalizationOptions
  /** When the worker fine-tunes the model on its own (`TrainingSchedule`); `false` never. */
  readonly training?: TrainingSchedule | false
  /**
   * Hearth's service worker, which keeps the library, the worker, the wasm files and the current
   * model for offline use (docs/offline.md). `false` registers none. Browsers only.
   */
  readonly serviceWorker?: ServiceWorkerOptions | false
}

/**
 * Automatic on-device training: when the page is idle (`requestIdleCallback`) or hidden, and
 * enough new events arrived since the last run, the worker fine-tunes the model within a budget.
 * Training runs in the worker, so the page never blocks; the budget bounds the worker's time and
 * tensor memory.
 */
export interface TrainingSchedule {
  /** New events needed before training again. Default 20. */
  readonly minNewEvents?: number
  /** Least time between two runs. Default 5 minutes. */
  readonly minIntervalMs?: number
  /** Per run. Default 2 s and 64 MB of tensors. */
  readonly budget?: TrainingBudget
  /** Overrides of the local training plan. */
  readonly plan?: Partial<TrainingPlan>
}

/** Options with every default applied. */
export interface ResolvedOptions {
  readonly aggregatorUrl: URL
  readonly appKey: string
  readonly model: string
  readonly federated: boolean
  readonly assetsBaseUrl: URL | null
  readonly backends: readonly BackendName[]
  readonly dbName: string
  readonly flushIntervalMs: number
  readonly personalization: PersonalizationOptions | undefined
  readonly training: Required<TrainingSchedule> | null
}

export const DEFAULT_TRAINING_SCHEDULE: Required<TrainingSchedule> = {
  minNewEvents: 20,
  minIntervalMs: 5 * 60_000,
  budget: { maxMs: 2_000, maxTensorBytes: 64 * 2 ** 20 },
  plan: {},
}

function resolveTraining(training: TrainingSchedule | false | undefined): Required<TrainingSchedule> | null {
  if (training === false) return null
  if (training !== undefined && (typeof training !== 'object' || training === null)) invalid('training must be an object or false')
  const merged = { ...DEFAULT_TRAINING_SCHEDULE, ...training }
  if (!Number.isInteger(merged.minNewEvents) || merged.minNewEvents < 1) invalid('training.minNewEvents must be a positive integer')
  if (!Number.isFinite(merged.minIntervalMs) || merged.minIntervalMs < 0) invalid('training.minIntervalMs must be a non-negative number')
  return merged
}

const BACKENDS: ReadonlySet<string> = new Set<BackendName>(['wasm', 'webgl', 'cpu'])

function invalid(detail: string): never {
  throw new HearthError('HEARTH_ERR_INVALID_ARGUMENT', detail)
}

function toUrl(value: unknown, name: string): URL {
  if (typeof value !== 'string' || value.length === 0) invalid(`${name} must be a URL string`)
  try {
    return new URL(value)
  } catch {
    return invalid(`${name} is not a valid absolute URL: ${value}`)
  }
}

/** Checks `options` and fills in defaults; throws `HEARTH_ERR_INVALID_ARGUMENT` naming the field. */
export function resolveOptions(options: HearthOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) invalid('options must be an object')
  const aggregatorUrl = toUrl(options.aggregatorUrl, 'aggregatorUrl')
  if (aggregatorUrl.protocol !== 'http:' && aggregatorUrl.protocol !== 'https:') {
    invalid(`aggregatorUrl must use http: or https:, got ${aggregatorUrl.protocol}`)
  }
  if (typeof options.appKey !== 'string' || options.appKey.length === 0) invalid('appKey must be a non-empty string')
  const model = options.model ?? 'default'
  if (typeof model !== 'string' || !/^[\w.-]{1,64}$/.test(model)) invalid('model must be 1 to 64 letters, digits, _ . or -')
  const backends = options.backends ?? ['wasm', 'cpu']
  if (!Array.isArray(backends) || backends.length === 0 || !backends.every((b) => BACKENDS.has(b))) {
    invalid(`backends must be a non-empty list of ${[...BACKENDS].join(', ')}`)
  }
  const flushIntervalMs = options.flushIntervalMs ?? 200
  if (!Number.isFinite(flushIntervalMs) || flushIntervalMs < 0) invalid('flushIntervalMs must be a non-negative number')
  let assetsBaseUrl: URL | null = null
  if (options.assetsBaseUrl !== undefined) {
    assetsBaseUrl = toUrl(options.assetsBaseUrl, 'assetsBaseUrl')
    if (!assetsBaseUrl.pathname.endsWith('/')) assetsBaseUrl.pathname += '/'
  }
  return {
    aggregatorUrl,
    appKey: options.appKey,
    model,
    federated: options.federated ?? true,
    assetsBaseUrl,
    backends,
    dbName: options.dbName ?? `hearth:${model}`,
    flushIntervalMs,
    personalization: options.personalization,
    training: resolveTraining(options.training),
  }
}
