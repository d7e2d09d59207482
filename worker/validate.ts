/**
 * Argument checks at the worker's boundary. Values arrive by structured clone from the page (or
 * straight from a simulation), so types are checked at run time too. Every failure is a
 * `HearthError` whose message names the argument (STYLE.md #3).
 */
import { HearthError } from '../protocol/errors.ts'
import { MAX_ITEM_ID_LENGTH, toInteractionEvent } from '../protocol/events.ts'
import type { InteractionEvent } from '../protocol/events.ts'
import type { TrainingPlan } from '../protocol/messages.ts'
import { assertFitsSpec } from '../protocol/model-spec.ts'
import type { ModelSpec } from '../protocol/model-spec.ts'
import { toSensitiveFeatures } from '../protocol/personal-data.ts'
import { MAX_CANDIDATES, toExplorationConfig } from '../protocol/ranking.ts'
import type { RankOptions } from '../protocol/ranking.ts'
import type { BackendName, OffPolicyRequest, RoundParticipation, RoundTrainingRequest, TrainingBudget, WorkerInitOptions } from './api.ts'
import type { PersonalizationOptions } from './personalization/personalization.ts'

const BACKENDS: ReadonlySet<string> = new Set<BackendName>(['wasm', 'webgl', 'cpu'])
/** Largest number of items one `score()` call may rank. */
export const MAX_SCORE_ITEMS = 100_000

function invalid(detail: string): never {
  throw new HearthError('HEARTH_ERR_INVALID_ARGUMENT', detail)
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null
}

function assertInteger(value: unknown, name: string, min: number, max = Number.MAX_SAFE_INTEGER): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    invalid(`${name} must be an integer in [${min}, ${max}], got ${String(value)}`)
  }
}

/** Checks `init()` options (the spec itself is checked by the model). */
export function checkInitOptions(options: unknown): asserts options is WorkerInitOptions {
  if (!isObject(options)) invalid('options must be an object like { dbName, spec }')
  const { dbName, spec, backends, wasmBaseUrl } = options
  if (typeof dbName !== 'string' || dbName.length === 0 || dbName.length > 256) invalid('options.dbName must be a string of 1 to 256 characters')
  if (!isObject(spec)) invalid('options.spec must be a model specification')
  if (backends !== undefined && (!Array.isArray(backends) || backends.length === 0 || !backends.every((b) => BACKENDS.has(b)))) {
    invalid(`options.backends must be a non-empty list of ${[...BACKENDS].join(', ')}`)
  }
  if (wasmBaseUrl !== undefined && (typeof wasmBaseUrl !== 'string' || !wasmBaseUrl.endsWith('/'))) {
    invalid('options.wasmBaseUrl must be a URL string ending with /')
  }
}

/** Validates and normalizes events with the same rules as the page (`toInteractionEvent`). */
export function checkEvents(events: unknown, now: number): InteractionEvent[] {
  if (!Array.isArray(events)) invalid('events must be an array of events')
  return events.map((event: unknown, i) => {
    try {
      return toInteractionEvent(event, now)
    } catch (error) {
      if (error instanceof HearthError) throw new HearthError(error.code, `events[${i}]: ${error.message}`)
      throw error
    }
  })
}

export function checkPlan(plan: unknown, name: string): asserts plan is TrainingPlan {
  if (!isObject(plan)) invalid(`${name} must be an object like { epochs, batchSize, learningRate, maxExamples }`)
  assertInteger(plan.epochs, `${name}.epochs`, 1, 1000)
  assertInteger(plan.batchSize, `${name}.batchSize`, 1, 1 << 16)
  assertInteger(plan.maxExamples, `${name}.maxExamples`, 1, 1 << 24)
  const lr = plan.learningRate
  if (typeof lr !== 'number' || !Number.isFinite(lr) || lr <= 0) invalid(`${name}.learningRate must be a positive number, got ${String(lr)}`)
}

export function checkVersion(version: unknown, name: string): asserts version is number {
  assertInteger(version, name, 0)
}

/**
 * Checks a flat federated vector of `spec`: a `Float32Array` (`HEARTH_ERR_INVALID_ARGUMENT`) of
 * the spec's length (`HEARTH_ERR_MODEL_MISMATCH`) holding finite numbers only.
 */
export function checkWeights(spec: ModelSpec, weights: unknown, name: string): asserts weights is Float32Array {
  if (!(weights instanceof Float32Array)) invalid(`${name} must be a Float32Array`)
  assertFitsSpec(spec, weights)
  for (let i = 0; i < weights.length; i++) {
    if (!Number.isFinite(weights[i])) invalid(`${name}[${i}] is not a finite number`)
  }
}

export function checkRoundRequest(spec: ModelSpec, request: unknown): asserts request is RoundTrainingRequest {
  if (!isObject(request)) invalid('request must be an object like { roundId, baseVersion, globalWeights, plan }')
  assertInteger(request.roundId, 'request.roundId', 0)
  checkVersion(request.baseVersion, 'request.baseVersion')
  checkWeights(spec, request.globalWeights, 'request.globalWeights')
  checkPlan(request.plan, 'request.plan')
}

export function checkParticipation(entry: unknown): asserts entry is RoundParticipation {
  if (!isObject(entry)) invalid('entry must be an object like { roundId, model, at, elements }')
  assertInteger(entry.roundId, 'entry.roundId', 0)
  if (typeof entry.model !== 'string' || entry.model.length === 0) invalid('entry.model must be a non-empty string')
  if (typeof entry.at !== 'number' || !Number.isFinite(entry.at) || entry.at < 0) invalid('entry.at must be a non-negative epoch time in milliseconds')
  assertInteger(entry.elements, 'entry.elements', 0)
}

export function checkItems(items: unknown): asserts items is readonly string[] {
  if (!Array.isArray(items)) invalid('items must be an array of item ids')
  if (items.length > MAX_SCORE_ITEMS) invalid(`items may hold at most ${MAX_SCORE_ITEMS} ids, got ${items.length}`)
  items.forEach((item: unknown, i) => {
    if (typeof item !== 'string' || item.length === 0 || item.length > MAX_ITEM_ID_LENGTH) {
      invalid(`items[${i}] must be a string of 1 to ${MAX_ITEM_ID_LENGTH} characters`)
    }
  })
}

function assertPositive(value: unknown, name: string): asserts value is number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) invalid(`${name} must be a positive number, got ${String(value)}`)
}

/** Checks `init()`'s personalization options (sensitive features, limits, exploration). */
export function checkPersonalizationOptions(options: unknown, name: string): asserts options is PersonalizationOptions {
  if (!isObject(options)) invalid(`${name} must be an object`)
  const { sensitiveFeatures, retentionDays, maxEvents, maxDecisions, exploration, attributionWindowMs } = options
  if (sensitiveFeatures !== undefined) toSensitiveFeatures(sensitiveFeatures, `${name}.sensitiveFeatures`)
  if (retentionDays !== undefined) assertPositive(retentionDays, `${name}.retentionDays`)
  if (maxEvents !== undefined) assertInteger(maxEvents, `${name}.maxEvents`, 1)
  if (maxDecisions !== undefined) assertInteger(maxDecisions, `${name}.maxDecisions`, 0)
  if (exploration !== undefined) toExplorationConfig(exploration, `${name}.exploration`)
  if (attributionWindowMs !== undefined) assertPositive(attributionWindowMs, `${name}.attributionWindowMs`)
}

/** Checks `rank()` options and returns them normalized. */
export function checkRankOptions(options: unknown): RankOptions {
  if (!isObject(options)) invalid('options must be an object like { exploration, log }')
  const { exploration, log } = options
  if (log !== undefined && typeof log !== 'boolean') invalid('options.log must be a boolean')
  return {
    ...(exploration === undefined ? {} : { exploration: toExplorationConfig(exploration, 'options.exploration') }),
    ...(log === undefined ? {} : { log }),
  }
}

/** Checks a training budget. */
export function checkBudget(budget: unknown, name: string): asserts budget is TrainingBudget {
  if (!isObject(budget)) invalid(`${name} must be an object like { maxMs, maxTensorBytes }`)
  if (budget.maxMs !== undefined) assertPositive(budget.maxMs, `${name}.maxMs`)
  if (budget.maxTensorBytes !== undefined) assertPositive(budget.maxTensorBytes, `${name}.maxTensorBytes`)
}

/** Checks an off-policy request against the spec. */
export function checkOffPolicyRequest(spec: ModelSpec, request: unknown): asserts request is OffPolicyRequest {
  if (!isObject(request)) invalid('request must be an object like { weights, exploration, slots }')
  if (request.weights !== undefined) checkWeights(spec, request.weights, 'request.weights')
  if (request.exploration !== undefined) {
    const policy = toExplorationConfig(request.exploration, 'request.exploration')
    if (policy.method === 'thompson') invalid('request.exploration must be none or epsilon-greedy: Thompson sampling has no closed-form propensities')
  }
  if (request.slots !== undefined) assertInteger(request.slots, 'request.slots', 1, MAX_CANDIDATES)
}
