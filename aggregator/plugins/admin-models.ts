/**
 * `GET /admin/models`: the models this aggregator serves, each with its latest version, for the
 * dashboard and `hearth models list`. Behind the admin token.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import fp from 'fastify-plugin'
import { Type } from 'typebox'
import { ErrorBodySchema } from '../schemas.ts'
import { adminGuard } from './admin.ts'

export const ModelSummarySchema = Type.Object({
  name: Type.String(),
  architecture: Type.String(),
  /** Elements of the federated vector (what each client uploads). */
  vectorLength: Type.Integer(),
  latestVersion: Type.Integer({ minimum: 1 }),
  /** Epoch milliseconds at which the latest version was published. */
  latestVersionAt: Type.Number(),
  /** The round that produced the latest version; null for the initial weights. */
  latestRoundId: Type.Union([Type.Integer(), Type.Null()]),
})

const adminModelsPlugin: FastifyPluginAsyncTypebox = async (app) => {
  const { registry, options } = app.hearth
  app.get(
    '/admin/models',
    {
      onRequest: adminGuard(options.adminToken),
      schema: { response: { 200: Type.Object({ models: Type.Array(ModelSummarySchema) }), '4xx': ErrorBodySchema } },
    },
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
}

export default fp(adminModelsPlugin, { name: 'hearth-admin-models', fastify: '5.x', decorators: { fastify: ['hearth'] } })
