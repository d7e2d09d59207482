/**
 * Rounds run by hand, behind the admin token:
 *
 * - `POST /admin/rounds` with a round configuration document (`config/round-document.ts`):
 *   creates a round in stage `created` for the document's model (201). A document is refused
 *   (400, `problems` listing each) when it is invalid or states a field that is fixed for the
 *   process differently (`config/round-request.ts` says which fields may differ per round);
 * - `POST /admin/rounds/:id/start`: the model's engine opens it now, or once the round in
 *   flight ends (`begins` says which);
 * - `POST /admin/rounds/:id/stop {"reason"?}`: a created round is cancelled, a running one
 *   aborted; its record and its devices get the reason, naming the operator.
 *
 * Each action is appended to the audit log (`round.create`, `round.start`, `round.stop`) with
 * the actor (`audit/actor.ts`) and the round's config hash.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import fp from 'fastify-plugin'
import { Type } from 'typebox'
import { ACTOR_HEADER, ACTOR_MAX_LENGTH, requestActor } from '../audit/actor.ts'
import { AuditAction, roundActionEntry } from '../audit/audit-log.ts'
import { canonicalSha256, parseRoundDocument, roundDocumentHash, RoundDocumentSchema } from '../config/round-document.ts'
import { DocumentErrorSchema, ErrorBodySchema, RoundCreatedSchema, RoundRecordSchema, RoundStartedSchema } from '../schemas.ts'
import { adminGuard } from './admin.ts'

const errors = { '4xx': ErrorBodySchema, '5xx': ErrorBodySchema }
const headers = Type.Object({ [ACTOR_HEADER]: Type.Optional(Type.String({ maxLength: ACTOR_MAX_LENGTH })) })
const params = Type.Object({ id: Type.Integer({ minimum: 1 }) })
/** Longest stop reason kept: it goes to every participant and into the record. */
const REASON_MAX_LENGTH = 500

const adminRoundsPlugin: FastifyPluginAsyncTypebox = async (app) => {
  const { rounds, store, options } = app.hearth
  const onRequest = adminGuard(options.adminToken)
  const actorOf = (request: Parameters<typeof requestActor>[0]): string => requestActor(request, options.adminToken !== undefined)

  app.post(
    '/admin/rounds',
    {
      onRequest,
      // The body is described by the document's schema, but judged by parseRoundDocument, which
      // lists every problem at once (schema validation would stop at the first few).
      attachValidation: true,
      schema: {
        tags: ['admin'],
        summary: 'Create a round from a round configuration document',
        headers,
        body: RoundDocumentSchema,
        response: { 201: RoundCreatedSchema, 400: DocumentErrorSchema, ...errors },
      },
    },
    async (request, reply) => {
      const document = parseRoundDocument(request.body)
      const round = await rounds.create(document)
      const documentHash = roundDocumentHash(document)
      const configHash = canonicalSha256(round.config)
      const actor = actorOf(request)
      await store.appendAudit(roundActionEntry(actor, Date.now(), AuditAction.roundCreate, round, { documentHash, document }))
      request.log.info({ roundId: round.id, model: round.model, documentHash, actor }, 'round created')
      return reply.code(201).send({ round, documentHash, configHash })
    },
  )

  app.post(
    '/admin/rounds/:id/start',
    {
      onRequest,
      schema: {
        tags: ['admin'],
        summary: 'Start a created round: now, or once the round in flight ends',
        headers,
        params,
        response: { 200: RoundStartedSchema, ...errors },
      },
    },
    async (request) => {
      const { id } = request.params
      const started = await rounds.start(id)
      const record = rounds.round(id)?.toRecord() ?? (await store.getRound(id))
      const actor = actorOf(request)
      if (record !== undefined) {
        await store.appendAudit(roundActionEntry(actor, Date.now(), AuditAction.roundStart, record, { begins: started.begins, ahead: started.ahead }))
      }
      request.log.info({ roundId: id, begins: started.begins, actor }, 'round started')
      return { roundId: id, ...started }
    },
  )

  app.post(
    '/admin/rounds/:id/stop',
    {
      onRequest,
      schema: {
        tags: ['admin'],
        summary: 'Cancel a created round, or abort a running one',
        headers,
        params,
        body: Type.Object({ reason: Type.Optional(Type.String({ minLength: 1, maxLength: REASON_MAX_LENGTH })) }, { additionalProperties: false }),
        response: { 200: RoundRecordSchema, ...errors },
      },
      // The body is optional: no body reads as `{}`.
      preValidation: async (request) => {
        request.body ??= {}
      },
    },
    async (request) => {
      const { id } = request.params
      const actor = actorOf(request)
      const reason = request.body.reason?.trim()
      const record = await rounds.stop(id, reason === undefined || reason === '' ? actor : `${actor}: ${reason}`)
      await store.appendAudit(roundActionEntry(actor, Date.now(), AuditAction.roundStop, record, { reason: record.reason, selected: record.participants, uploads: record.uploadsAccepted }))
      request.log.info({ roundId: id, reason: record.reason, actor }, 'round stopped')
      return record
    },
  )
}

export default fp(adminRoundsPlugin, { name: 'hearth-admin-rounds', fastify: '5.x', decorators: { fastify: ['hearth'] } })
