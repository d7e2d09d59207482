/**
 * `GET /health`: liveness (the process answers). `GET /ready`: readiness, for load balancers:
 * the route exists only once the store is open, models are loaded and round engines run, and
 * Fastify answers 503 to every request once `close()` begins (`return503OnClosing`), so a
 * replica drains before it stops. Both cheap and never cached.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import fp from 'fastify-plugin'
import { Type } from 'typebox'
import { PROTOCOL_VERSION, ROUTES } from '../../protocol/messages.ts'

export const HealthSchema = Type.Object({
  status: Type.Literal('ok'),
  /** The round protocol version this aggregator speaks. */
  protocol: Type.Integer(),
})

export const ReadySchema = Type.Object({ status: Type.Literal('ready') })

const healthPlugin: FastifyPluginAsyncTypebox = async (app) => {
  app.get(ROUTES.ready, { schema: { response: { 200: ReadySchema } } }, async (_request, reply) => {
    reply.header('cache-control', 'no-store')
    return { status: 'ready' as const }
  })

  app.get(ROUTES.health, { schema: { response: { 200: HealthSchema } } }, async (_request, reply) => {
    reply.header('cache-control', 'no-store')
    return { status: 'ok' as const, protocol: PROTOCOL_VERSION }
  })
}

export default fp(healthPlugin, { name: 'hearth-health', fastify: '5.x' })
