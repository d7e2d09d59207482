/**
 * `GET /admin/audit[?limit&before]`: the audit log, newest first, keyset-paginated like
 * `/admin/rounds`. Behind the admin token. Read-only: entries are written by the actions they
 * record (`audit/audit-log.ts`), never through this API.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import fp from 'fastify-plugin'
import { AuditListSchema, ErrorBodySchema, PageQuerySchema } from '../schemas.ts'
import { adminGuard } from './admin.ts'

const DEFAULT_LIMIT = 50

const adminAuditPlugin: FastifyPluginAsyncTypebox = async (app) => {
  const { store, options } = app.hearth
  app.get(
    '/admin/audit',
    {
      onRequest: adminGuard(options.adminToken),
      schema: { querystring: PageQuerySchema, response: { 200: AuditListSchema, '4xx': ErrorBodySchema, '5xx': ErrorBodySchema } },
    },
    async (request, reply) => {
      const limit = request.query.limit ?? DEFAULT_LIMIT
      const entries = await store.listAudit({ limit, before: request.query.before })
      reply.header('cache-control', 'no-store')
      const last = entries[entries.length - 1]
      return entries.length === limit && last !== undefined ? { entries, next: last.id } : { entries }
    },
  )
}

export default fp(adminAuditPlugin, { name: 'hearth-admin-audit', fastify: '5.x', decorators: { fastify: ['hearth'] } })
