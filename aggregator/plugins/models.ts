/**
 * Model endpoints for clients:
 *
 * - `GET /v1/models/:model` → {@link ModelInfo} JSON.
 * - `GET /v1/models/:model/versions/:version` → the version's Weights frame
 *   (`application/octet-stream`, id = version). Immutable once published, so cacheable for a
 *   year (RFC 8246 `immutable`).
 * - `GET /v1/models/:model/versions/latest` → the latest version's frame, revalidated on every
 *   use (`no-cache`), cheaply thanks to its ETag; `Content-Location` names the numbered version.
 *
 * Both weight routes send a strong `ETag` and answer `If-None-Match` with 304.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply } from 'fastify'
import fp from 'fastify-plugin'
import { Type } from 'typebox'
import type { ModelInfo } from '../../protocol/messages.ts'
import { ROUTES } from '../../protocol/messages.ts'
import type { WeightsRepresentation } from '../models/registry.ts'
import { ErrorBodySchema, ModelInfoSchema, ModelNameSchema, WeightsResponses } from '../schemas.ts'

const IMMUTABLE = 'public, max-age=31536000, immutable'
const REVALIDATE = 'no-cache'

const ModelParams = Type.Object({ model: ModelNameSchema })
const VersionParams = Type.Object({ model: ModelNameSchema, version: Type.Integer({ minimum: 1, maximum: 0xffffffff }) })
const ConditionalHeaders = Type.Object({ 'if-none-match': Type.Optional(Type.String({ maxLength: 4096 })) })
const errors = { '4xx': ErrorBodySchema, '5xx': ErrorBodySchema }

/**
 * RFC 9110 §13.1.2: If-None-Match matches when it is `*` or lists an entity tag that equals
 * `etag` under the weak comparison (the `W/` prefixes are ignored).
 */
export function ifNoneMatchHits(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false
  if (header.trim() === '*') return true
  const opaque = etag.replace(/^W\//, '')
  for (const tag of header.match(/(?:W\/)?"[^"]*"/g) ?? []) {
    if (tag.replace(/^W\//, '') === opaque) return true
  }
  return false
}

function sendWeights(
  reply: FastifyReply,
  ifNoneMatch: string | undefined,
  weights: WeightsRepresentation,
  cacheControl: string,
): FastifyReply {
  reply.header('etag', weights.etag).header('cache-control', cacheControl)
  if (ifNoneMatchHits(ifNoneMatch, weights.etag)) return reply.code(304).send()
  const { bytes } = weights
  return reply.type('application/octet-stream').send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength))
}

const modelsPlugin: FastifyPluginAsyncTypebox = async (app) => {
  const { registry } = app.hearth

  // Paths are those of ROUTES.model and ROUTES.modelVersion.
  app.get(
    '/v1/models/:model',
    { schema: { params: ModelParams, response: { 200: ModelInfoSchema, ...errors } } },
    async (request, reply): Promise<ModelInfo> => {
      const model = registry.model(request.params.model)
      reply.header('cache-control', REVALIDATE)
      return { name: model.name, latestVersion: registry.latest(model.name).version, spec: model.spec }
    },
  )

  app.get(
    '/v1/models/:model/versions/latest',
    { schema: { params: ModelParams, headers: ConditionalHeaders, response: { ...WeightsResponses, ...errors } } },
    async (request, reply) => {
      const weights = registry.latestWeights(request.params.model)
      reply.header('content-location', ROUTES.modelVersion(request.params.model, weights.version))
      return sendWeights(reply, request.headers['if-none-match'], weights, REVALIDATE)
    },
  )

  app.get(
    '/v1/models/:model/versions/:version',
    { schema: { params: VersionParams, headers: ConditionalHeaders, response: { ...WeightsResponses, ...errors } } },
    async (request, reply) => {
      const weights = await registry.weights(request.params.model, request.params.version)
      return sendWeights(reply, request.headers['if-none-match'], weights, IMMUTABLE)
    },
  )
}

export default fp(modelsPlugin, { name: 'hearth-models', fastify: '5.x', decorators: { fastify: ['hearth'] } })
