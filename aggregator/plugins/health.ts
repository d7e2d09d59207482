/** `GET /health`: liveness for load balancers and orchestrators. Cheap, never cached. */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import fp from 'fastify-plugin'
import { Type } from 'typebox'
import { PROTOCOL_VERSION, ROUTES } from '../../protocol/messages.ts'

export const HealthSchema = Type.Object({
  status: Type.Literal('ok'),
  /** The round protocol version this aggregator speaks. */
  protocol: Type.Integer(),
})

const healthPlugin: FastifyPluginAsyncTypebox = async (app) => {
  app.get(ROUTES.health, { schema: { response: { 200: HealthSchema } } }, async (_request, reply) => {
    reply.header('cache-control', 'no-store')
    return { status: 'ok' as const, protocol: PROTOCOL_VERSION }
  })
}

export default fp(healthPlugin, { name: 'hearth-health', fastify: '5.x' })
