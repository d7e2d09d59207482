/**
 * Read-only round history for operators: `GET /admin/rounds` (newest first, keyset-paginated)
 * and `GET /admin/rounds/:id`. Guarded by a bearer token (RFC 6750) when `adminToken` is set.
 * Live rounds are read from memory, so the history is current to the last message.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { Type } from 'typebox'
import { HearthError } from '../../protocol/errors.ts'
import { secretEquals } from '../auth.ts'
import type { AggregatorContext } from '../context.ts'
import type { RoundQuery, RoundRecord } from '../store/store.ts'
import { ErrorBodySchema, ModelNameSchema, PageQuerySchema, RoundListSchema, RoundRecordSchema } from '../schemas.ts'

const DEFAULT_LIMIT = 50
const errors = { '4xx': ErrorBodySchema, '5xx': ErrorBodySchema }

/** An `onRequest` hook admitting only `Authorization: Bearer <token>`; open when `token` is unset. */
export function adminGuard(token: string | undefined) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (token === undefined) return
    const match = /^Bearer +([\x21-\x7e]+) *$/i.exec(request.headers.authorization ?? '')
    if (match?.[1] !== undefined && secretEquals(match[1], token)) return
    // RFC 6750 §3: a 401 carries a WWW-Authenticate challenge.
    reply.header('www-authenticate', 'Bearer realm="hearth-admin"')
    throw new HearthError('HEARTH_ERR_UNAUTHORIZED', 'admin endpoints need a valid bearer token')
  }
}

/**
 * Round records of `query`, newest first, with live rounds read from memory: a live round's
 * in-memory state is ahead of its last write by at most one flush.
 */
export async function currentRounds(hearth: AggregatorContext, query: RoundQuery): Promise<RoundRecord[]> {
  const page = await hearth.store.listRounds(query)
  return page.map((record) => liveRecord(hearth, record.id) ?? record)
}

/**
 * A round's in-memory record, when this process runs it alone. A cluster replica holds only its
 * own groups of a round; the coordinator's record in the store is the whole round.
 */
function liveRecord(hearth: AggregatorContext, id: number): RoundRecord | undefined {
  return hearth.cluster === undefined ? hearth.rounds.round(id)?.toRecord() : undefined
}

const adminPlugin: FastifyPluginAsyncTypebox = async (app) => {
  const { options } = app.hearth
  const onRequest = adminGuard(options.adminToken)

  app.get(
    '/admin/rounds',
    {
      onRequest,
      schema: {
        querystring: Type.Object({ model: Type.Optional(ModelNameSchema), ...PageQuerySchema.properties }),
        response: { 200: RoundListSchema, ...errors },
      },
    },
    async (request, reply) => {
      const limit = request.query.limit ?? DEFAULT_LIMIT
      const page = await currentRounds(app.hearth, { model: request.query.model, before: request.query.before, limit })
      reply.header('cache-control', 'no-store')
      const last = page[page.length - 1]
      return page.length === limit && last !== undefined ? { rounds: page, next: last.id } : { rounds: page }
    },
  )

  app.get(
    '/admin/rounds/:id',
    {
      onRequest,
      schema: {
        params: Type.Object({ id: Type.Integer({ minimum: 1 }) }),
        response: { 200: RoundRecordSchema, ...errors },
      },
    },
    async (request, reply) => {
      const record = liveRecord(app.hearth, request.params.id) ?? (await app.hearth.store.getRound(request.params.id))
      if (record === undefined) throw new HearthError('HEARTH_ERR_UNKNOWN_ROUND', `round ${request.params.id}`)
      reply.header('cache-control', 'no-store')
      return record
    },
  )
}

export default fp(adminPlugin, { name: 'hearth-admin', fastify: '5.x', decorators: { fastify: ['hearth'] } })
