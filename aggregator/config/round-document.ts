/**
 * The round configuration document: what a privacy team writes, reviews and versions to say how
 * a model's rounds run. JSON, `"version": 1`; every field but `model` has a default.
 *
 * ```json
 * {
 *   "version": 1,
 *   "model": "default",
 *   "cohort": { "target": 100, "minimum": 50, "overSelection": 1.3 },
 *   "deadlines": { "selectionMs": 5000, "trainingMs": 120000 },
 *   "aggregation": { "mode": "secagg", "expectedDropout": 0.1, "corruptFraction": 0.05 },
 *   "privacy": { "mode": "central", "clipNorm": 1, "targetEpsilon": 8, "rounds": 500,
 *                "budget": { "epsilon": 8, "delta": 1e-6 } },
 *   "optimizer": { "kind": "fedadam", "learningRate": 0.1 }
 * }
 * ```
 *
 * {@link parseRoundDocument} checks it against the schema and then across fields, and refuses it
 * with every problem listed at once ({@link RoundDocumentError}), so a review fixes a document in
 * one pass. {@link roundDocumentHash} names a document in the audit log: SHA-256 of its canonical
 * JSON (keys sorted, defaults applied), so two spellings of one configuration share a hash.
 *
 * Secure-aggregation parameters are given as the threat model they derive from (dropout rate,
 * corrupt fraction); k and t follow per group (`protocol/secagg/params.ts`).
 */
import { sha256 } from '@noble/hashes/sha2.js'
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js'
import { Type } from 'typebox'
import type { Static, TSchema } from 'typebox'
import { Settings } from 'typebox/system'
import { Value } from 'typebox/value'
import { HearthError } from '../../protocol/errors.ts'
import type { ErrorBody } from '../../protocol/errors.ts'

/** The document version this aggregator reads. */
export const ROUND_DOCUMENT_VERSION = 1

const Strict = { additionalProperties: false } as const
const Int = (minimum: number, maximum: number): ReturnType<typeof Type.Integer> => Type.Integer({ minimum, maximum })
const Fraction = Type.Number({ minimum: 0, exclusiveMaximum: 1 })
const Positive = Type.Number({ exclusiveMinimum: 0 })
// setTimeout clamps anything above 2^31 - 1 ms to 1 ms (Node docs, "setTimeout").
const Ms = Int(1, 2 ** 31 - 1)

const Cohort = Type.Object(
  {
    /** Clients a round aims to aggregate. */
    target: Int(1, 1_000_000),
    /** Fewest accepted updates a round publishes with. */
    minimum: Int(1, 1_000_000),
    /** Select target × overSelection clients, so that dropouts still leave the target. */
    overSelection: Type.Number({ minimum: 1, maximum: 4 }),
  },
  Strict,
)

const Deadlines = Type.Object(
  {
    selectionMs: Ms,
    trainingMs: Ms,
    pauseMs: Type.Optional(Ms),
    /** Per secure-aggregation stage; unset stages use the protocol's defaults. */
    secaggStagesMs: Type.Optional(
      Type.Object(
        {
          'advertise-keys': Type.Optional(Ms),
          'share-keys': Type.Optional(Ms),
          'masked-input-collection': Type.Optional(Ms),
          'consistency-check': Type.Optional(Ms),
          unmasking: Type.Optional(Ms),
        },
        Strict,
      ),
    ),
  },
  Strict,
)

const Training = Type.Object(
  { epochs: Int(1, 100), batchSize: Int(1, 4096), learningRate: Positive, maxExamples: Int(1, 1_000_000) },
  Strict,
)

const Sampling = {
  uniform: Type.Object({ kind: Type.Literal('uniform') }, Strict),
  poisson: Type.Object({ kind: Type.Literal('poisson'), rate: Type.Number({ exclusiveMinimum: 0, maximum: 1 }) }, Strict),
}

const Aggregation = {
  plain: Type.Object({ mode: Type.Literal('plain'), maxUpdateNorm: Type.Optional(Positive) }, Strict),
  secagg: Type.Object(
    {
      mode: Type.Literal('secagg'),
      variant: Type.Optional(Type.Union([Type.Literal('secagg'), Type.Literal('secagg+')])),
      modulusBits: Type.Optional(Int(8, 32)),
      expectedDropout: Type.Optional(Fraction),
      corruptFraction: Type.Optional(Fraction),
      maxGroupSize: Type.Optional(Int(5, 100_000)),
      consistencyCheck: Type.Optional(Type.Boolean()),
    },
    Strict,
  ),
}

const Budget = Type.Object({ epsilon: Positive, delta: Type.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1 }) }, Strict)
const AdaptiveClipping = Type.Object(
  { targetQuantile: Type.Optional(Type.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1 })), learningRate: Type.Optional(Positive), countNoise: Type.Optional(Positive) },
  Strict,
)
const DpFields = {
  clipNorm: Positive,
  /** z; or give `targetEpsilon` and `rounds` and the accountant picks z. */
  noiseMultiplier: Type.Optional(Positive),
  targetEpsilon: Type.Optional(Positive),
  rounds: Type.Optional(Int(1, 10_000_000)),
  budget: Budget,
  expectedCohortSize: Type.Optional(Int(1, 10_000_000)),
  adaptiveClipping: Type.Optional(AdaptiveClipping),
}
const Privacy = {
  none: Type.Object({ mode: Type.Literal('none') }, Strict),
  central: Type.Object({ mode: Type.Literal('central'), ...DpFields }, Strict),
  distributed: Type.Object(
    {
      mode: Type.Literal('distributed'),
      ...DpFields,
      noise: Type.Optional(Type.Union([Type.Literal('discrete-gaussian'), Type.Literal('skellam')])),
      /** The fewest devices whose noise a published group sum must hold (`rounds.privacy.minSurvivors`). */
      minSurvivors: Type.Optional(Int(2, 100_000)),
    },
    Strict,
  ),
}

const Adaptive = {
  learningRate: Type.Optional(Positive),
  beta1: Type.Optional(Fraction),
  beta2: Type.Optional(Fraction),
  tau: Type.Optional(Positive),
  learningRateDecay: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1 })),
  /** η times a factor for the named federated tensors, e.g. `{ "tower_kernel": 0.1 }`. */
  tensorLearningRates: Type.Optional(Type.Record(Type.String({ minLength: 1, maxLength: 64 }), Positive)),
}
const Optimizer = {
  fedavg: Type.Object({ kind: Type.Literal('fedavg') }, Strict),
  fedadam: Type.Object({ kind: Type.Literal('fedadam'), ...Adaptive }, Strict),
  fedyogi: Type.Object({ kind: Type.Literal('fedyogi'), ...Adaptive }, Strict),
  fedadagrad: Type.Object({ kind: Type.Literal('fedadagrad'), ...Adaptive }, Strict),
}

/**
 * The document's shape, for the OpenAPI description; the variant fields (sampling, aggregation,
 * privacy, optimizer) are checked per variant by {@link parseRoundDocument}.
 */
export const RoundDocumentSchema = Type.Object(
  {
    version: Type.Literal(ROUND_DOCUMENT_VERSION),
    model: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' }),
    description: Type.Optional(Type.String({ maxLength: 2000 })),
    cohort: Type.Optional(Type.Partial(Cohort, Strict)),
    deadlines: Type.Optional(Type.Partial(Deadlines, Strict)),
    training: Type.Optional(Type.Partial(Training, Strict)),
    // Checked by variant below, so that an error names the variant's field, not every variant's.
    sampling: Type.Optional(Type.Unknown()),
    aggregation: Type.Optional(Type.Unknown()),
    privacy: Type.Optional(Type.Unknown()),
    optimizer: Type.Optional(Type.Unknown()),
  },
  Strict,
)

type VariantOf<T extends Record<string, TSchema>> = { [K in keyof T]: Static<T[K]> }[keyof T]

/** A validated document with every default applied. */
export interface RoundDocument {
  readonly version: typeof ROUND_DOCUMENT_VERSION
  readonly model: string
  readonly description?: string
  readonly cohort: Static<typeof Cohort>
  readonly deadlines: Static<typeof Deadlines>
  readonly training: Static<typeof Training>
  readonly sampling: VariantOf<typeof Sampling>
  readonly aggregation: VariantOf<typeof Aggregation>
  readonly privacy: VariantOf<typeof Privacy>
  readonly optimizer: VariantOf<typeof Optimizer>
}

/** Defaults: the aggregator's own (`aggregator/options.ts`), so a bare document runs as before. */
export const ROUND_DOCUMENT_DEFAULTS = {
  cohort: { target: 50, minimum: 3, overSelection: 1 },
  deadlines: { selectionMs: 5_000, trainingMs: 120_000 },
  training: { epochs: 1, batchSize: 32, learningRate: 1, maxExamples: 1000 },
  sampling: { kind: 'uniform' },
  aggregation: { mode: 'plain' },
  privacy: { mode: 'none' },
  optimizer: { kind: 'fedavg' },
} as const satisfies Omit<RoundDocument, 'version' | 'model'>

/** A refused document: `problems` lists every one, each as `path: what is wrong`. */
export class RoundDocumentError extends HearthError {
  readonly problems: readonly string[]

  constructor(problems: readonly string[]) {
    super('HEARTH_ERR_INVALID_CONFIG', `round configuration has ${problems.length} problem${problems.length === 1 ? '' : 's'}: ${problems.join('; ')}`)
    this.name = 'RoundDocumentError'
    this.problems = problems
  }

  /** The wire form, with the problems listed one by one (`DocumentErrorSchema`). */
  override toBody(): ErrorBody & { readonly problems: readonly string[] } {
    return { ...super.toBody(), problems: this.problems }
  }
}

/** Validates `input` and applies defaults; throws {@link RoundDocumentError} listing every problem. */
export function parseRoundDocument(input: unknown): RoundDocument {
  const problems = schemaProblems(RoundDocumentSchema, input, '')
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new RoundDocumentError(problems)
  const raw = input as Record<string, unknown>
  const variant = <T extends Record<string, TSchema>>(field: string, key: string, variants: T, fallback: VariantOf<T>): VariantOf<T> => {
    const value = raw[field]
    if (value === undefined) return fallback
    const tag = typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined
    const schema = typeof tag === 'string' && Object.hasOwn(variants, tag) ? variants[tag] : undefined
    if (schema === undefined) {
      problems.push(`/${field}/${key}: must be one of ${Object.keys(variants).map((k) => `"${k}"`).join(', ')}`)
      return fallback
    }
    problems.push(...schemaProblems(schema, value, `/${field}`))
    return value as VariantOf<T>
  }
  const document: RoundDocument = {
    version: ROUND_DOCUMENT_VERSION,
    model: raw.model as string,
    ...(typeof raw.description === 'string' ? { description: raw.description } : {}),
    cohort: { ...ROUND_DOCUMENT_DEFAULTS.cohort, ...(raw.cohort as object | undefined) },
    deadlines: { ...ROUND_DOCUMENT_DEFAULTS.deadlines, ...(raw.deadlines as object | undefined) },
    training: { ...ROUND_DOCUMENT_DEFAULTS.training, ...(raw.training as object | undefined) },
    sampling: variant('sampling', 'kind', Sampling, ROUND_DOCUMENT_DEFAULTS.sampling),
    aggregation: variant('aggregation', 'mode', Aggregation, ROUND_DOCUMENT_DEFAULTS.aggregation),
    privacy: variant('privacy', 'mode', Privacy, ROUND_DOCUMENT_DEFAULTS.privacy),
    optimizer: variant('optimizer', 'kind', Optimizer, ROUND_DOCUMENT_DEFAULTS.optimizer),
  }
  if (problems.length === 0) problems.push(...crossFieldProblems(document))
  if (problems.length > 0) throw new RoundDocumentError(problems)
  return document
}

/** Hex SHA-256 of the document's canonical JSON (sorted keys), for the audit log. */
export function roundDocumentHash(document: RoundDocument): string {
  return canonicalSha256(document)
}

/** Hex SHA-256 (FIPS 180-4) of `value`'s canonical JSON: equal for equal configurations. */
export function canonicalSha256(value: unknown): string {
  return bytesToHex(sha256(utf8ToBytes(canonicalJson(value))))
}

/** JSON with object keys sorted at every level: one text per configuration. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined)
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`
  }
  return JSON.stringify(value)
}

// A document has at most a few dozen fields, so listing them all is cheap; TypeBox stops at 8.
const MAX_PROBLEMS = 200

function schemaProblems(schema: TSchema, value: unknown, prefix: string): string[] {
  return collectErrors(schema, value)
    .filter((error) => error.keyword !== 'boolean') // restated by its `additionalProperties` error
    .map((error) => {
      const path = `${prefix}${error.instancePath}` || '/'
      if (error.keyword === 'additionalProperties') return `${path}: unknown field${plural(error.params.additionalProperties)} ${error.params.additionalProperties.join(', ')}`
      if (error.keyword === 'required') return `${path}: missing ${error.params.requiredProperties.join(', ')}`
      return `${path}: ${error.message}`
    })
}

function collectErrors(schema: TSchema, value: unknown): ReturnType<typeof Value.Errors> {
  // The limit is process-wide (it also guards request validation); raise it for this call only.
  const { maxErrors } = Settings.Get()
  Settings.Set({ maxErrors: MAX_PROBLEMS })
  try {
    return Value.Errors(schema, value)
  } finally {
    Settings.Set({ maxErrors })
  }
}

function plural(items: readonly unknown[]): string {
  return items.length === 1 ? '' : 's'
}

/** Rules that span fields; run once the shape is right, so each names a real conflict. */
function crossFieldProblems(d: RoundDocument): string[] {
  const problems: string[] = []
  if (d.cohort.minimum > d.cohort.target) problems.push(`/cohort/minimum: ${d.cohort.minimum} exceeds the target ${d.cohort.target}`)
  const privacy = d.privacy
  if (privacy.mode !== 'none') {
    const byNoise = privacy.noiseMultiplier !== undefined
    const byTarget = privacy.targetEpsilon !== undefined
    if (byNoise === byTarget) problems.push('/privacy: give either noiseMultiplier, or targetEpsilon with rounds')
    if (byTarget && privacy.rounds === undefined) problems.push('/privacy/rounds: required with targetEpsilon (the accountant spreads ε over them)')
    if (byTarget && (privacy.targetEpsilon as number) > privacy.budget.epsilon) {
      problems.push(`/privacy/targetEpsilon: ${privacy.targetEpsilon} exceeds the budget's ε ${privacy.budget.epsilon}`)
    }
    if (d.sampling.kind === 'poisson' && privacy.expectedCohortSize === undefined) {
      problems.push('/privacy/expectedCohortSize: required with Poisson sampling (the fixed denominator of DP-FedAvg)')
    }
    if (privacy.mode === 'distributed' && d.aggregation.mode !== 'secagg') {
      problems.push('/privacy/mode: distributed DP needs aggregation.mode "secagg" (the noise is only private once summed under masks)')
    }
  }
  return problems
}
