/**
 * The secure-aggregation options of the aggregator (`rounds.secagg`), their defaults and their
 * validation. `options.ts` calls {@link resolveSecAgg} when `rounds.aggregation` is `secagg`.
 *
 * Nothing here sets k or t: each group's graph degree and threshold are derived from its size,
 * `expectedDropout` and `corruptFraction` by `protocol/secagg/params.ts` when the group forms.
 */
import { ClipIndicator } from '../../protocol/clip.ts'
import { HearthError } from '../../protocol/errors.ts'
import type { SecAggStage } from '../../protocol/secagg/messages.ts'
import { SecAggMode } from '../../protocol/secagg/params.ts'
import { inputLimit, quantizationLevels } from '../../protocol/secagg/quantize.ts'
import type { QuantizationParams } from '../../protocol/secagg/quantize.ts'

/** `rounds.secagg`: every field optional. */
export interface SecAggOptions {
  /** `secagg+` (sparse graph, the default) or `secagg` (complete graph, Bonawitz et al. 2017). */
  readonly variant?: SecAggMode
  /**
   * C: clients clip their delta to this L2 norm before quantizing it (quantization needs a
   * bound). With central DP the round's clip norm is used instead. Default 10.
   */
  readonly clipNorm?: number
  /** b: vectors live in Z_{2^b}. Default 32 (the finest quantization the wire type allows). */
  readonly modulusBits?: number
  /** δ: expected fraction of a group that drops out over the round. Default 0.1. */
  readonly expectedDropout?: number
  /** γ: tolerated fraction of clients colluding with the aggregator. Default 0.05. */
  readonly corruptFraction?: number
  /** Largest group; a larger cohort is split into balanced groups. Default 500. */
  readonly maxGroupSize?: number
  /** Run the ConsistencyCheck stage. Default false. */
  readonly consistencyCheck?: boolean
  /**
   * Stage deadlines in ms. MaskedInputCollection defaults to `rounds.uploadTimeoutMs` (clients
   * train during it); the other stages to `protocol/secagg`'s `DEFAULT_STAGE_TIMEOUTS_MS`.
   */
  readonly stageTimeoutsMs?: Partial<Record<SecAggStage, number>>
}

export interface ResolvedSecAgg {
  readonly variant: SecAggMode
  readonly clipNorm: number
  readonly modulusBits: number
  readonly expectedDropout: number
  readonly corruptFraction: number
  readonly maxGroupSize: number
  readonly consistencyCheck: boolean
  readonly stageTimeoutsMs: Partial<Record<SecAggStage, number>>
}

// setTimeout clamps anything above 2^31 - 1 ms to 1 ms (Node docs, "setTimeout").
const MAX_TIMER_MS = 2 ** 31 - 1

/** Applies defaults and validates; throws `HEARTH_ERR_INVALID_CONFIG` naming the option. */
export function resolveSecAgg(options: SecAggOptions, uploadTimeoutMs: number): ResolvedSecAgg {
  const variant = options.variant ?? SecAggMode.SecAggPlus
  if (variant !== SecAggMode.SecAgg && variant !== SecAggMode.SecAggPlus) invalid('variant', `must be secagg or secagg+, got ${String(variant)}`)
  const clipNorm = options.clipNorm ?? 10
  if (!(clipNorm > 0 && Number.isFinite(clipNorm))) invalid('clipNorm', `must be a positive number, got ${clipNorm}`)
  const modulusBits = options.modulusBits ?? 32
  if (!Number.isInteger(modulusBits) || modulusBits < 8 || modulusBits > 32) invalid('modulusBits', `must be an integer in [8, 32], got ${modulusBits}`)
  const maxGroupSize = options.maxGroupSize ?? 500
  // From 5 up, balanced groups never fall below the 3 clients a group needs (⌊n / ⌈n / 5⌉⌋ >= 3 for n >= 3).
  if (!Number.isInteger(maxGroupSize) || maxGroupSize < 5 || maxGroupSize > 100_000) invalid('maxGroupSize', `must be an integer in [5, 100000], got ${maxGroupSize}`)
  try {
    inputLimit(modulusBits, maxGroupSize)
  } catch (error) {
    invalid('modulusBits', (error as Error).message)
  }
  const fraction = (name: string, value: number): number => {
    if (!(value >= 0 && value < 1)) invalid(name, `must be in [0, 1), got ${value}`)
    return value
  }
  const stageTimeoutsMs: Partial<Record<SecAggStage, number>> = { 'masked-input-collection': uploadTimeoutMs, ...options.stageTimeoutsMs }
  for (const [stage, ms] of Object.entries(stageTimeoutsMs)) {
    if (!Number.isInteger(ms) || ms < 1 || ms > MAX_TIMER_MS) invalid(`stageTimeoutsMs.${stage}`, `must be an integer in [1, ${MAX_TIMER_MS}], got ${ms}`)
  }
  return {
    variant,
    clipNorm,
    modulusBits,
    expectedDropout: fraction('expectedDropout', options.expectedDropout ?? 0.1),
    corruptFraction: fraction('corruptFraction', options.corruptFraction ?? 0.05),
    maxGroupSize,
    consistencyCheck: options.consistencyCheck ?? false,
    stageTimeoutsMs,
  }
}

/**
 * How devices quantize in a secure round of groups of at most `maxSummands`. The quantization's
 * clip norm is `settings.clipNorm`, or with central DP the norm bound of the private upload —
 * the delta clipped to C followed by its ±½ clipping indicator (`protocol/clip.ts`) — √(C² + ¼),
 * so that quantizing never clips the indicator.
 */
export function secureQuantization(settings: ResolvedSecAgg, maxSummands: number, privateClipNorm: number | null): QuantizationParams {
  const clipNorm = privateClipNorm === null ? settings.clipNorm : privateUploadNorm(privateClipNorm)
  return { clipNorm, modulusBits: settings.modulusBits, maxSummands }
}

/** √(C² + ¼): the L2 bound of a private upload, the delta clipped to C and its ±½ indicator. */
export function privateUploadNorm(clipNorm: number): number {
  return Math.hypot(clipNorm, ClipIndicator.Unclipped)
}

/** s = 2C/L: the quantization grid step; stochastic rounding moves a coordinate by less (quantize.ts). */
export function quantizationStep(params: QuantizationParams): number {
  return (2 * params.clipNorm) / quantizationLevels(params)
}

function invalid(option: string, detail: string): never {
  throw new HearthError('HEARTH_ERR_INVALID_CONFIG', `rounds.secagg.${option} ${detail}`)
}
