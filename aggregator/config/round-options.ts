/**
 * Turns a validated round configuration document (`round-document.ts`) into the aggregator's
 * `RoundOptions`, so a reviewed document and the options a program passes run the same code.
 * `resolveOptions` still checks the result (for example the secure-aggregation modulus against
 * the group size), so nothing here duplicates those rules.
 */
import { noiseMultiplierForEpsilon } from '../../protocol/dp/accountant.ts'
import type { RoundOptions } from '../options.ts'
import type { PrivacyOptions } from '../privacy/options.ts'
import { AdaptiveOptimizer } from '../rounds/adaptive-optimizer.ts'
import { FedAvg } from '../rounds/fedavg.ts'
import type { ServerOptimizer } from '../rounds/strategy.ts'
import type { RoundDocument } from './round-document.ts'

/** The `rounds` options a document describes. */
export function roundOptionsFromDocument(document: RoundDocument): RoundOptions {
  const { cohort, deadlines, training, sampling, aggregation } = document
  const privacy = privacyOptions(document)
  return {
    minCohort: cohort.minimum,
    // Over-selection: invite more than the target so that dropouts still leave it.
    maxCohort: Math.ceil(cohort.target * cohort.overSelection),
    selectionTimeoutMs: deadlines.selectionMs,
    uploadTimeoutMs: deadlines.trainingMs,
    ...(deadlines.pauseMs === undefined ? {} : { pauseMs: deadlines.pauseMs }),
    training,
    sampling,
    ...(aggregation.mode === 'plain'
      ? { aggregation: 'plain' as const, ...(aggregation.maxUpdateNorm === undefined ? {} : { maxUpdateNorm: aggregation.maxUpdateNorm }) }
      : {
          aggregation: 'secagg' as const,
          secagg: {
            ...(aggregation.variant === undefined ? {} : { variant: aggregation.variant }),
            ...(aggregation.modulusBits === undefined ? {} : { modulusBits: aggregation.modulusBits }),
            ...(aggregation.expectedDropout === undefined ? {} : { expectedDropout: aggregation.expectedDropout }),
            ...(aggregation.corruptFraction === undefined ? {} : { corruptFraction: aggregation.corruptFraction }),
            ...(aggregation.maxGroupSize === undefined ? {} : { maxGroupSize: aggregation.maxGroupSize }),
            ...(aggregation.consistencyCheck === undefined ? {} : { consistencyCheck: aggregation.consistencyCheck }),
            ...(deadlines.secaggStagesMs === undefined ? {} : { stageTimeoutsMs: deadlines.secaggStagesMs }),
          },
        }),
    ...(privacy === undefined ? {} : { privacy }),
    optimizer: optimizer(document),
  }
}

function privacyOptions(document: RoundDocument): PrivacyOptions | undefined {
  const privacy = document.privacy
  if (privacy.mode === 'none') return undefined
  // The accountant's q: the Poisson rate, or 1 for uniform cohorts (no amplification claimed).
  const samplingRate = document.sampling.kind === 'poisson' ? document.sampling.rate : 1
  const noiseMultiplier =
    privacy.noiseMultiplier ??
    noiseMultiplierForEpsilon({ samplingRate, rounds: privacy.rounds as number, epsilon: privacy.targetEpsilon as number, delta: privacy.budget.delta }).noiseMultiplier
  return {
    mode: privacy.mode,
    ...(privacy.mode === 'distributed' && privacy.noise !== undefined ? { mechanism: privacy.noise } : {}),
    ...(privacy.mode === 'distributed' && privacy.minSurvivors !== undefined ? { minSurvivors: privacy.minSurvivors } : {}),
    clipNorm: privacy.clipNorm,
    noiseMultiplier,
    budget: privacy.budget,
    ...(privacy.expectedCohortSize === undefined ? {} : { expectedCohortSize: privacy.expectedCohortSize }),
    ...(privacy.adaptiveClipping === undefined ? {} : { adaptiveClipping: privacy.adaptiveClipping }),
  }
}

function optimizer(document: RoundDocument): ServerOptimizer {
  const chosen = document.optimizer
  if (chosen.kind === 'fedavg') return new FedAvg()
  const { kind, ...hyper } = chosen
  return new AdaptiveOptimizer(kind, hyper)
}
