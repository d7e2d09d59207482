/**
 * TypeBox schemas of the HTTP bodies, shared by the plugins. They mirror the protocol types
 * (`protocol/messages.ts`, `protocol/model-spec.ts`, `protocol/errors.ts`) and the round record
 * (`store/store.ts`); the assignments at the bottom fail to compile if the two drift apart.
 */
import { Type } from 'typebox'
import type { Static } from 'typebox'
import type { ErrorBody } from '../protocol/errors.ts'
import type { ModelInfo } from '../protocol/messages.ts'
import type { RoundRecord } from './store/store.ts'

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

export const RoundRecordSchema = Type.Object({
  id: Type.Integer(),
  model: Type.String(),
  baseVersion: Type.Integer(),
  stage: Type.Union([Type.Literal('selection'), Type.Literal('training'), Type.Literal('aggregation'), Type.Literal('done')]),
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
  }),
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
})

export const RoundListSchema = Type.Object({
  rounds: Type.Array(RoundRecordSchema),
  /** Pass as `before` to get the next page; absent on the last page. */
  next: Type.Optional(Type.Integer()),
})

// Compile-time checks: each protocol value must be sendable under its schema.
export const _errorBodyFits = (body: ErrorBody): Static<typeof ErrorBodySchema> => body
export const _roundFits = (round: RoundRecord): Static<typeof RoundRecordSchema> => round
export const _modelInfoFits = (info: ModelInfo): Static<typeof ModelInfoSchema> => info
