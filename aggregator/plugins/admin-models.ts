/**
 * The models, for the dashboard and `hearth models`, behind the admin token:
 *
 * - `GET /admin/models`: each served model with its latest version;
 * - `GET /admin/models/:model/versions[?limit&before]`: its versions without weights, newest first;
 * - `POST /admin/models/:model/rollback {"toVersion": n}`: publishes a new version with version
 *   n's weights (`ModelRegistry.rollback`), recorded in the audit log as `model.rollback`.
 *
 * A rollback is refused while a round of the model runs (`HEARTH_ERR_MODEL_BUSY`): that round
 * trained on the weights being replaced and would otherwise fail at publish anyway (its base
 * version would no longer be the latest). It changes nothing in the privacy ledger: the weights
 * were already published, and republishing them is post-processing.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import fp from 'fastify-plugin'
import { Type } from 'typebox'
import { HearthError } from '../../protocol/errors.ts'
import { ACTOR_HEADER, ACTOR_MAX_LENGTH, requestActor } from '../audit/actor.ts'
import { rollbackEntry } from '../audit/audit-log.ts'
import { ErrorBodySchema, ModelNameSchema, PageQuerySchema, VersionSummarySchema } from '../schemas.ts'
import { adminGuard } from './admin.ts'

const DEFAULT_LIMIT = 20
const errors = { '4xx': ErrorBodySchema, '5xx': ErrorBodySchema }

export const ModelSummarySchema = Type.Object({
  name: Type.String(),
  architecture: Type.String(),
  /** Elements of the federated vector (what each client uploads). */
  vectorLength: Type.Integer(),
  latestVersion: Type.Integer({ minimum: 1 }),
  /** Epoch milliseconds at which the latest version was published. */
  latestVersionAt: Type.Number(),
  /** The round that produced the latest version; null for the initial weights and rollbacks. */
  latestRoundId: Type.Union([Type.Integer(), Type.Null()]),
})

export const RollbackResultSchema = Type.Object({
  model: Type.String(),
  fromVersion: Type.Integer(),
  toVersion: Type.Integer(),
  /** The version now served, with `toVersion`'s weights. */
  newVersion: Type.Integer(),
  sha256: Type.String(),
  /** The id of the `model.rollback` entry in the audit log. */
  auditId: Type.Integer(),
})

const adminModelsPlugin: FastifyPluginAsyncTypebox = async (app) => {
  const { registry, rounds, store, options } = app.hearth
  const onRequest = adminGuard(options.adminToken)
  const params = Type.Object({ model: ModelNameSchema })

  app.get(
    '/admin/models',
    { onRequest, schema: { response: { 200: Type.Object({ models: Type.Array(ModelSummarySchema) }), ...errors } } },
    async (_request, reply) => {
      reply.header('cache-control', 'no-store')
      const models = registry.names().map((name) => {
        const served = registry.model(name)
        const latest = registry.latest(name)
        return {
          name,
          architecture: served.spec.architecture,
          vectorLength: served.vectorLength,
          latestVersion: latest.version,
          latestVersionAt: latest.createdAt,
          latestRoundId: latest.roundId,
        }
      })
      return { models }
    },
  )

  app.get(
    '/admin/models/:model/versions',
    {
      onRequest,
      schema: {
        params,
        querystring: PageQuerySchema,
        response: { 200: Type.Object({ versions: Type.Array(VersionSummarySchema), next: Type.Optional(Type.Integer()) }), ...errors },
      },
    },
    async (request, reply) => {
      const { model } = request.params
      registry.model(model) // throws HEARTH_ERR_UNKNOWN_MODEL
      const limit = request.query.limit ?? DEFAULT_LIMIT
      const versions = await store.listVersions({ model, limit, before: request.query.before })
      reply.header('cache-control', 'no-store')
      const last = versions[versions.length - 1]
      return versions.length === limit && last !== undefined ? { versions, next: last.version } : { versions }
    },
  )

  app.post(
    '/admin/models/:model/rollback',
    {
      onRequest,
      schema: {
        params,
        headers: Type.Object({ [ACTOR_HEADER]: Type.Optional(Type.String({ maxLength: ACTOR_MAX_LENGTH })) }),
        body: Type.Object({ toVersion: Type.Integer({ minimum: 1 }) }, { additionalProperties: false }),
        response: { 200: RollbackResultSchema, ...errors },
      },
    },
    async (request) => {
      const { model } = request.params
      const { toVersion } = request.body
      const running = rounds.engine(model)?.current
      if (running !== undefined) {
        throw new HearthError('HEARTH_ERR_MODEL_BUSY', `round ${running.id} of ${model} is running; roll back once it ends`)
      }
      const actor = requestActor(request, options.adminToken !== undefined)
      const at = Date.now()
      const { version, audit } = await registry.rollback(model, toVersion, at, (change) => rollbackEntry(actor, at, { model, toVersion, ...change }))
      request.log.info({ model, toVersion, newVersion: version.version, actor }, 'model rolled back')
      return { model, fromVersion: version.version - 1, toVersion, newVersion: version.version, sha256: version.sha256, auditId: audit.id }
    },
  )
}

export default fp(adminModelsPlugin, { name: 'hearth-admin-models', fastify: '5.x', decorators: { fastify: ['hearth'] } })
