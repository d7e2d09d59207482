/**
 * Distributed differential privacy on the aggregator's side (KLS21; DESIGN.md §3 `distributed`).
 * The devices do the private part — clip, scale, round, add their noise share, mask
 * (`protocol/dp/distributed-encoding.ts`, in the worker) — so the aggregator adds no noise here.
 * It plans the parameters, decodes each group's noised sum, and refuses to publish a sum that
 * holds fewer noise shares than the accountant counted on.
 *
 * The plan (`planDistributedDp`) is made once per model at start, for the private upload (the
 * delta clipped to C and its ±½ indicator: L2 bound √(C² + ¼), d + 1 elements), the modulus of
 * `rounds.secagg.modulusBits`, the largest group, and `noisyClients` honest shares. Its scale
 * makes the largest group's worst-case signal plus noise fit the signed range of the modulus
 * (modular clipping: nothing is clipped to the modulus on a device; the wrap probability of the
 * noise is 1e−9 per coordinate). A configuration whose modulus cannot hold that is refused.
 */
import { CLIP_INDICATOR_ELEMENTS } from '../../protocol/clip.ts'
import { centredSum } from '../../protocol/dp/distributed-encoding.ts'
import { planDistributedDp } from '../../protocol/dp/distributed-params.ts'
import type { DistributedDpPlan } from '../../protocol/dp/distributed-params.ts'
import { HearthError } from '../../protocol/errors.ts'
import type { GroupOutcome } from '../../protocol/secagg/groups.ts'
import { privateUploadNorm } from '../rounds/secagg-options.ts'
import type { AggregateResult } from '../rounds/strategy.ts'
import type { ResolvedDistributed, ResolvedPrivacy } from './options.ts'

/** How secure aggregation treats the group sums of a distributed-DP round. */
export interface DistributedSum {
  readonly plan: DistributedDpPlan
  /** A group sum with fewer devices in it is not published. */
  readonly minSurvivors: number
}

/** Plans a model's distributed DP; throws `HEARTH_ERR_INVALID_CONFIG` when the modulus cannot hold it. */
export function planDistributed(privacy: ResolvedPrivacy, settings: ResolvedDistributed, vectorLength: number): DistributedSum {
  try {
    const plan = planDistributedDp({
      mechanism: settings.mechanism,
      bits: settings.modulusBits,
      maxClients: settings.maxClients,
      noisyClients: settings.noisyClients,
      clipNorm: privateUploadNorm(privacy.clipNorm),
      dim: vectorLength + CLIP_INDICATOR_ELEMENTS,
      noiseMultiplier: privacy.noiseMultiplier,
    })
    return { plan, minSurvivors: settings.minSurvivors }
  } catch (error) {
    if (!(error instanceof RangeError)) throw error
    throw new HearthError('HEARTH_ERR_INVALID_CONFIG', `rounds.privacy (distributed) cannot be planned for groups of up to ${settings.maxClients}: ${error.message}`, { cause: error })
  }
}

/**
 * Why the round must not publish, or undefined: a completed group's sum holds fewer devices, and
 * so fewer noise shares, than `minSurvivors`.
 */
export function noiseShortfall(outcomes: readonly GroupOutcome[], minSurvivors: number): HearthError | undefined {
  const short = outcomes.filter((o) => o.sum !== undefined && (o.survivors ?? 0) < minSurvivors)
  if (short.length === 0) return undefined
  const groups = short.map((o) => `group ${o.groupId} has ${o.survivors ?? 0}`).join(', ')
  return new HearthError('HEARTH_ERR_PRIVACY_NOISE_SHORTFALL', `the accountant assumed at least ${minSurvivors} devices' noise in each published sum; ${groups}`)
}

/**
 * Σ of the completed groups' noised sums in the model's units, and the devices in it. Each group
 * sum is read as signed on its own (the plan bounds one group, not their total).
 */
export function decodeNoisedGroups(outcomes: readonly GroupOutcome[], vectorLength: number, plan: DistributedDpPlan): { sum: Float64Array; contributors: number } {
  const sum = new Float64Array(vectorLength)
  let contributors = 0
  for (const outcome of outcomes) {
    if (outcome.sum === undefined || outcome.survivors === undefined) continue
    const centred = centredSum(outcome.sum, plan.bits)
    for (let i = 0; i < vectorLength; i++) sum[i] = (sum[i] as number) + (centred[i] as number) / plan.scale
    contributors += outcome.survivors
  }
  return { sum, contributors }
}

/**
 * The released aggregate: the noised delta sum over the fixed denominator m (as in central DP,
 * MRTZ18), and the clipped fraction estimated from the noised indicator sum Σ(b_i − ½).
 */
export function finishDistributedSum(result: AggregateResult, denominator: number): AggregateResult {
  const d = result.sum.length - CLIP_INDICATOR_ELEMENTS
  const uploads = result.count
  const unclipped = ((result.sum[d] as number) + uploads / 2) / uploads
  return {
    sum: result.sum.slice(0, d),
    count: denominator,
    privacy: { uploads, clippedCount: null, unclippedFraction: Math.min(1, Math.max(0, unclipped)), grids: [] },
  }
}
