/**
 * The privacy ledger for audit: `GET /admin/models/:model/ledger` answers every ledger entry of
 * the model and the ε an independent replay of them gives (`privacy/ledger-export.ts`), with the
 * trust and sampling assumptions in words. Behind the admin token, like the rest of `/admin`.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import fp from 'fastify-plugin'
import { Type } from 'typebox'
import { HearthError } from '../../protocol/errors.ts'
import { buildLedgerExport } from '../privacy/ledger-export.ts'
import { ErrorBodySchema, LedgerExportSchema, ModelNameSchema } from '../schemas.ts'
import { adminGuard } from './admin.ts'

const errors = { '4xx': ErrorBodySchema, '5xx': ErrorBodySchema }

const privacyPlugin: FastifyPluginAsyncTypebox = async (app) => {
  const { store, rounds, registry, options } = app.hearth
  const onRequest = adminGuard(options.adminToken)

  app.get(
    '/admin/models/:model/ledger',
    {
      onRequest,
      schema: {
        params: Type.Object({ model: ModelNameSchema }),
        response: { 200: LedgerExportSchema, ...errors },
      },
    },
    async (request, reply) => {
      const { model } = request.params
      const served = registry.has(model)
      if (!served && (await store.getModel(model)) === undefined) {
        throw new HearthError('HEARTH_ERR_UNKNOWN_MODEL', `no model named ${JSON.stringify(model)}`)
      }
      const [entries, state] = await Promise.all([store.listLedger(model), store.getPrivacyState(model)])
      reply.header('cache-control', 'no-store')
      // A stored model this process does not serve is reported from its ledger alone.
      const current = served
        ? { privacy: options.rounds.privacy, sampling: options.rounds.sampling, clipNorm: rounds.privacy(model)?.clipNorm ?? null }
        : undefined
      return buildLedgerExport({ model, entries, state, now: Date.now(), ...(current === undefined ? {} : { current }) })
    },
  )
}

export default fp(privacyPlugin, { name: 'hearth-privacy', fastify: '5.x', decorators: { fastify: ['hearth'] } })
