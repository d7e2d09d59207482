/**
 * What a round created through the admin API (`POST /admin/rounds`) runs with, from its round
 * configuration document and the options the aggregator was started with.
 *
 * Per round (the engine reads them from the round itself): `cohort` (minimum, target,
 * over-selection), `deadlines.selectionMs` and `deadlines.trainingMs`, `training`, and
 * `aggregation.maxUpdateNorm` (plain aggregation without DP, where the round gets its own
 * strategy).
 *
 * Fixed for the process, because state outlives a round or was planned at start: `privacy` (the
 * ledger and budget, the noise plan, the fixed denominator m and, for distributed DP, the
 * modulus sized for the largest group), `sampling` (the q the accountant charges), `aggregation`
 * otherwise (secure aggregation's parameters and stage deadlines, where the
 * masked-input-collection deadline defaults to `deadlines.trainingMs`), `optimizer` (its
 * moments carry over between rounds) and `deadlines.pauseMs` (the engine's, between rounds).
 * A document must state them as they are: each difference is listed as a problem, so a
 * reviewed document never silently runs under other privacy settings than it says.
 */
import { HearthError } from '../../protocol/errors.ts'
import { resolveOptions } from '../options.ts'
import type { ResolvedRoundOptions } from '../options.ts'
import { AdaptiveOptimizer } from '../rounds/adaptive-optimizer.ts'
import { strategyName } from '../rounds/engine.ts'
import type { AggregationStrategy, ServerOptimizer } from '../rounds/strategy.ts'
import type { RoundConfig } from '../store/store.ts'
import { canonicalJson, RoundDocumentError, roundDocumentHash } from './round-document.ts'
import type { RoundDocument } from './round-document.ts'
import { roundOptionsFromDocument } from './round-options.ts'

/** A created round's settings: stored as its `config`, plus its own strategy when it has one. */
export interface RoundRequestPlan {
  readonly config: RoundConfig
  readonly strategy?: AggregationStrategy
}

/**
 * The settings of a round created from `document` on an aggregator running `fixed`. Throws
 * {@link RoundDocumentError} listing every problem: an option the document resolves to that
 * the aggregator refuses, and every fixed field the document states differently.
 */
export function planRequestedRound(document: RoundDocument, fixed: ResolvedRoundOptions): RoundRequestPlan {
  const options = roundOptionsFromDocument(document)
  let own: ResolvedRoundOptions
  try {
    own = resolveOptions({ rounds: options }).rounds
  } catch (error) {
    if (error instanceof HearthError) throw new RoundDocumentError([`/: ${error.message}`])
    throw error
  }
  const problems = [
    ...differences('/sampling', own.sampling, fixed.sampling),
    ...differences('/aggregation', aggregationView(own), aggregationView(fixed)),
    ...differences('/privacy', privacyView(own), privacyView(fixed)),
    ...differences('/optimizer', optimizerView(own.optimizer), optimizerView(fixed.optimizer)),
  ]
  if (options.pauseMs !== undefined && options.pauseMs !== fixed.pauseMs) {
    problems.push(`/deadlines/pauseMs: ${options.pauseMs} in the document, ${fixed.pauseMs} in this aggregator (fixed for the process)`)
  }
  if (problems.length > 0) throw new RoundDocumentError(problems)
  const config: RoundConfig = {
    minCohort: own.minCohort,
    maxCohort: own.maxCohort,
    selectionTimeoutMs: own.selectionTimeoutMs,
    uploadTimeoutMs: own.uploadTimeoutMs,
    training: own.training,
    strategy: strategyName(fixed),
    optimizer: fixed.optimizer.name,
    sampling: fixed.sampling,
    documentHash: roundDocumentHash(document),
  }
  // Only a plain round without DP combines updates with a strategy of its own (its norm bound).
  return fixed.secagg === null && fixed.privacy === null ? { config, strategy: own.strategy } : { config }
}

/** What fixes aggregation: the strategy's name, and secure aggregation's settings if on. */
function aggregationView(rounds: ResolvedRoundOptions): Record<string, unknown> {
  if (rounds.secagg === null) return { mode: 'plain', strategy: rounds.strategy.name }
  return { mode: 'secagg', ...rounds.secagg }
}

function privacyView(rounds: ResolvedRoundOptions): Record<string, unknown> {
  if (rounds.privacy === null) return { mode: 'none' }
  // z_Δ is derived from z and the count noise; listing it would restate their differences.
  const { deltaNoiseMultiplier: _derived, ...settings } = rounds.privacy
  return { ...settings }
}

function optimizerView(optimizer: ServerOptimizer): Record<string, unknown> {
  if (!(optimizer instanceof AdaptiveOptimizer)) return { kind: optimizer.name }
  const { name, learningRate, beta1, beta2, tau, learningRateDecay, tensorLearningRates } = optimizer
  return { kind: name, learningRate, beta1, beta2, tau, learningRateDecay, tensorLearningRates }
}

// A differing discriminator makes every other field differ too: report it alone.
const DISCRIMINATORS = ['mode', 'kind'] as const

/** One problem per leaf where `document` and `fixed` differ, each naming its path. */
function differences(path: string, document: unknown, fixed: unknown): string[] {
  if (canonicalJson(document) === canonicalJson(fixed)) return []
  if (isObject(document) && isObject(fixed)) {
    const tag = DISCRIMINATORS.find((key) => key in document && document[key] !== fixed[key])
    const keys = tag === undefined ? [...new Set([...Object.keys(document), ...Object.keys(fixed)])] : [tag]
    return keys.flatMap((key) => differences(`${path}/${key}`, document[key], fixed[key]))
  }
  return [`${path}: ${show(document)} in the document, ${show(fixed)} in this aggregator (fixed for the process)`]
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function show(value: unknown): string {
  return value === undefined ? 'unset' : canonicalJson(value)
}
