/**
 * TypeBox schemas of the HTTP bodies, shared by the plugins. They mirror the protocol types
 * (`protocol/messages.ts`, `protocol/model-spec.ts`, `protocol/errors.ts`) and the round record
 * (`store/store.ts`); the assignments at the bottom fail to compile if the two drift apart.
 */
import { Type } from 'typebox'
import type { Static } from 'typebox'
import type { ErrorBody } from '../protocol/errors.ts'
import type { ModelInfo } from '../protocol/messages.ts'
import type { LedgerExport } from './privacy/ledger-export.ts'
import type { AuditEntry, ModelVersionSummary, RoundRecord } from './store/store.ts'

/** `{code, message, statusCode}`, the body of every error response. */
export const ErrorBodySchema = Type.Object({
  code: Type.String({ pattern: '^HEARTH_ERR_[A-Z_]+$' }),
  message: Type.String(),
  statusCode: Type.Integer(),
})

/** Model names as accepted in paths (see `options.ts`). */
export const ModelNameSchema = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$' })

const TensorInitSchema = Type.Union([
  Type.Object({ kind: Type.Literal('zeros') }),
  Type.Object({ kind: Type.Literal('normal'), std: Type.Number() }),
  Type.Object({ kind: Type.Literal('glorotUniform') }),
])

export const ModelSpecSchema = Type.Object({
  name: Type.String(),
  architecture: Type.Literal('hearth-mf-v1'),
  options: Type.Object({ buckets: Type.Integer(), dim: Type.Integer() }),
  // Immutable: the protocol types use readonly arrays.
  tensors: Type.Immutable(
    Type.Array(
      Type.Object({
        name: Type.String(),
        shape: Type.Immutable(Type.Array(Type.Integer())),
        federated: Type.Boolean(),
        init: TensorInitSchema,
      }),
    ),
  ),
})

export const ModelInfoSchema = Type.Object({
  name: Type.String(),
  latestVersion: Type.Integer({ minimum: 1 }),
  spec: ModelSpecSchema,
})

const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(schema: T) => Type.Union([schema, Type.Null()])

const SamplingSchema = Type.Union([
  Type.Object({ kind: Type.Literal('uniform') }),
  Type.Object({ kind: Type.Literal('poisson'), rate: Type.Number() }),
])

const BudgetSchema = Type.Object({ epsilon: Type.Number(), delta: Type.Number() })

/** `PrivacyEvent` of `protocol/dp/events.ts`. */
const PrivacyEventSchema = Type.Union([
  Type.Object({ kind: Type.Literal('sampled-gaussian'), samplingRate: Type.Number(), noiseMultiplier: Type.Number() }),
  Type.Object({
    kind: Type.Literal('sampled-distributed-discrete-gaussian'),
    samplingRate: Type.Number(),
    l2Sensitivity: Type.Number(),
    l1Sensitivity: Type.Optional(Type.Number()),
    localSigma: Type.Number(),
    noisyClients: Type.Integer(),
    dim: Type.Integer(),
  }),
  Type.Object({
    kind: Type.Literal('sampled-skellam'),
    samplingRate: Type.Number(),
    l2Sensitivity: Type.Number(),
    l1Sensitivity: Type.Optional(Type.Number()),
    variance: Type.Number(),
    dim: Type.Integer(),
  }),
])

/** `PrivacyParameters` of `store/store.ts`. */
const privacyParameters = {
  mode: Type.Union([Type.Literal('central'), Type.Literal('distributed')]),
  trustAssumption: Type.String(),
  sampling: Type.Union([Type.Literal('uniform'), Type.Literal('poisson')]),
  samplingRate: Type.Number(),
  clipNorm: Type.Number(),
  noiseMultiplier: Type.Number(),
  effectiveNoiseMultiplier: Type.Number(),
  denominator: Type.Number(),
  adaptiveClipping: Nullable(
    Type.Object({
      targetQuantile: Type.Number(),
      learningRate: Type.Number(),
      countNoise: Type.Number(),
      deltaNoiseMultiplier: Type.Number(),
    }),
  ),
  budget: BudgetSchema,
}

const ClippingOutcomeSchema = Type.Object({
  uploads: Type.Integer(),
  clippedCount: Nullable(Type.Integer()),
  clippedFraction: Type.Number(),
  noised: Type.Boolean(),
  nextClipNorm: Type.Number(),
})

const RoundPrivacySchema = Type.Object({
  ...privacyParameters,
  event: PrivacyEventSchema,
  epsilonBefore: Type.Number(),
  epsilonIfPublished: Type.Number(),
  clipping: Nullable(ClippingOutcomeSchema),
})

export const LedgerEntrySchema = Type.Object({
  ...privacyParameters,
  id: Type.Integer(),
  model: Type.String(),
  roundId: Type.Integer(),
  version: Type.Integer(),
  recordedAt: Type.Integer(),
  event: PrivacyEventSchema,
  count: Type.Integer(),
  rounds: Type.Integer(),
  epsilon: Type.Number(),
  order: Type.Number(),
  clipping: ClippingOutcomeSchema,
})

/** `LedgerExport` of `privacy/ledger-export.ts`. */
export const LedgerExportSchema = Type.Object({
  model: Type.String(),
  exportedAt: Type.Integer(),
  mode: Type.Union([Type.Literal('none'), Type.Literal('central'), Type.Literal('distributed')]),
  trustAssumption: Type.String(),
  sampling: Nullable(
    Type.Object({ kind: Type.Union([Type.Literal('uniform'), Type.Literal('poisson')]), samplingRate: Type.Number(), assumption: Type.String() }),
  ),
  budget: Nullable(BudgetSchema),
  epsilon: Nullable(Type.Number()),
  order: Nullable(Type.Number()),
  rounds: Type.Integer(),
  clipNorm: Nullable(Type.Number()),
  refusal: Nullable(Type.Object({ code: Type.String(), reason: Type.String(), at: Type.Integer() })),
  entries: Type.Immutable(Type.Array(LedgerEntrySchema)),
})

const SecAggGroupSchema = Type.Object({
  groupId: Type.Integer(),
  clients: Type.Integer(),
  degree: Type.Integer(),
  threshold: Type.Integer(),
  state: Type.String(),
  advertised: Nullable(Type.Integer()),
  shared: Nullable(Type.Integer()),
  masked: Nullable(Type.Integer()),
  unmasked: Nullable(Type.Integer()),
  survivors: Type.Integer(),
  contributed: Type.Boolean(),
  reason: Nullable(Type.String()),
})

/** `RoundSecAggRecord` of `store/store.ts`. */
const RoundSecAggSchema = Type.Object({
  variant: Type.Union([Type.Literal('secagg'), Type.Literal('secagg+')]),
  clipNorm: Type.Number(),
  modulusBits: Type.Integer(),
  maxSummands: Type.Integer(),
  expectedDropout: Type.Number(),
  corruptFraction: Type.Number(),
  groups: Type.Immutable(Type.Array(SecAggGroupSchema)),
})

export const RoundRecordSchema = Type.Object({
  id: Type.Integer(),
  model: Type.String(),
  baseVersion: Type.Integer(),
  stage: Type.Union([Type.Literal('created'), Type.Literal('selection'), Type.Literal('training'), Type.Literal('aggregation'), Type.Literal('done')]),
  config: Type.Object({
    minCohort: Type.Integer(),
    maxCohort: Type.Integer(),
    selectionTimeoutMs: Type.Integer(),
    uploadTimeoutMs: Type.Integer(),
    training: Type.Object({
      epochs: Type.Integer(),
      batchSize: Type.Integer(),
      learningRate: Type.Number(),
      maxExamples: Type.Integer(),
    }),
    strategy: Type.String(),
    optimizer: Type.String(),
    sampling: Type.Optional(SamplingSchema),
    /** SHA-256 of the configuration document an operator created the round from. */
    documentHash: Type.Optional(Type.String()),
  }),
  /** When the round was created, and once it opened, when selection opened. */
  createdAt: Type.Integer(),
  selectedAt: Nullable(Type.Integer()),
  uploadDeadline: Nullable(Type.Integer()),
  closedAt: Nullable(Type.Integer()),
  eligible: Type.Integer(),
  participants: Type.Integer(),
  uploadsAccepted: Type.Integer(),
  dropped: Type.Integer(),
  rejections: Type.Record(Type.String(), Type.Integer()),
  outcome: Nullable(Type.Union([Type.Literal('published'), Type.Literal('aborted')])),
  reason: Nullable(Type.String()),
  publishedVersion: Nullable(Type.Integer()),
  privacy: Nullable(RoundPrivacySchema),
  secagg: Nullable(RoundSecAggSchema),
})

export const RoundListSchema = Type.Object({
  rounds: Type.Array(RoundRecordSchema),
  /** Pass as `before` to get the next page; absent on the last page. */
  next: Type.Optional(Type.Integer()),
})

/** `ModelVersionSummary` of `store/store.ts`: a version without its weights. */
export const VersionSummarySchema = Type.Object({
  model: Type.String(),
  version: Type.Integer({ minimum: 1 }),
  /** Hex SHA-256 of the weights: equal digests, equal weights (a rollback shows its target's). */
  sha256: Type.String(),
  createdAt: Type.Integer(),
  /** The round that produced it; null for the initial weights and for rollbacks. */
  roundId: Nullable(Type.Integer()),
})

/** `AuditEntry` of `store/store.ts`. */
export const AuditEntrySchema = Type.Object({
  id: Type.Integer(),
  at: Type.Integer(),
  actor: Type.String(),
  action: Type.String(),
  subject: Type.String(),
  details: Type.Record(Type.String(), Type.Unknown()),
})

export const AuditListSchema = Type.Object({
  entries: Type.Array(AuditEntrySchema),
  /** Pass as `before` to get the next page; absent on the last page. */
  next: Type.Optional(Type.Integer()),
})

/** A refused round configuration document: the error body plus every problem, one per line. */
export const DocumentErrorSchema = Type.Object({
  ...ErrorBodySchema.properties,
  problems: Type.Optional(Type.Array(Type.String())),
})

/** The answer to `POST /admin/rounds`. */
export const RoundCreatedSchema = Type.Object({
  round: RoundRecordSchema,
  /** SHA-256 of the document's canonical JSON, defaults applied (`roundDocumentHash`). */
  documentHash: Type.String(),
  /** SHA-256 of the round's stored `config`, as every audit entry of the round names it. */
  configHash: Type.String(),
})

/** The answer to `POST /admin/rounds/:id/start`. */
export const RoundStartedSchema = Type.Object({
  roundId: Type.Integer(),
  model: Type.String(),
  /** `now`: selection opened; `after-current-round`: it opens once the rounds ahead end. */
  begins: Type.Union([Type.Literal('now'), Type.Literal('after-current-round')]),
  /** Rounds that run before it (the one in flight and earlier started ones). */
  ahead: Type.Integer({ minimum: 0 }),
})

/**
 * A model version's weights: a binary Weights frame (`protocol/frames.ts`), or 304 when the
 * `If-None-Match` ETag still holds. Described for OpenAPI; binary bodies are never serialized.
 */
export const WeightsResponses = {
  200: {
    description: 'The version as a Weights frame (protocol/frames.ts), with its ETag',
    content: { 'application/octet-stream': { schema: Type.String({ format: 'binary' }) } },
  },
  304: { description: 'Not Modified: the ETag in If-None-Match still names this version', type: 'null' },
} as const

/** Keyset pagination parameters, as `/admin/rounds` takes them. */
export const PageQuerySchema = Type.Object({
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
  before: Type.Optional(Type.Integer({ minimum: 1 })),
})

// Compile-time checks: each protocol value must be sendable under its schema.
export const _errorBodyFits = (body: ErrorBody): Static<typeof ErrorBodySchema> => body
export const _roundFits = (round: RoundRecord): Static<typeof RoundRecordSchema> => round
export const _modelInfoFits = (info: ModelInfo): Static<typeof ModelInfoSchema> => info
export const _ledgerFits = (ledger: LedgerExport): Static<typeof LedgerExportSchema> => ledger
export const _versionFits = (version: ModelVersionSummary): Static<typeof VersionSummarySchema> => version
export const _auditFits = (entry: AuditEntry): Static<typeof AuditEntrySchema> => entry
