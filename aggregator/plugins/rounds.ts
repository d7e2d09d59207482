/**
 * The round protocol's WebSocket at `ROUTES.roundsSocket`: adapts each socket to a
 * `SessionTransport` and hands its messages to the `RoundService`. `@fastify/websocket` itself
 * is registered by `buildApp`, first, with `maxPayload` bounding every message.
 *
 * Browsers do not apply CORS to WebSockets, so when `corsOrigins` is set the upgrade's `Origin`
 * is checked here (cross-site WebSocket hijacking). Clients outside a browser send no `Origin`.
 */
// For its augmentation of Fastify's route options (`websocket: true`).
import type {} from '@fastify/websocket'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { Type } from 'typebox'
import type { RawData, WebSocket } from 'ws'
import { HearthError } from '../../protocol/errors.ts'
import { ROUTES } from '../../protocol/messages.ts'

/** The `code` `ws` gives the error for a message above `maxPayload` (ws/lib/receiver.js). */
const WS_TOO_LARGE = 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH'

function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data)
  return data instanceof ArrayBuffer ? new Uint8Array(data) : data
}

async function roundsPlugin(app: FastifyInstance): Promise<void> {
  const { rounds, options } = app.hearth
  const allowed = options.corsOrigins === undefined ? undefined : new Set(options.corsOrigins)

  const checkOrigin = async (request: FastifyRequest): Promise<void> => {
    const origin = request.headers.origin
    if (allowed !== undefined && origin !== undefined && !allowed.has(origin)) {
      throw new HearthError('HEARTH_ERR_UNAUTHORIZED', `origin ${origin} is not allowed`)
    }
  }

  // The upgrade request carries nothing but headers; messages are validated by the service.
  const schema = { headers: Type.Object({ origin: Type.Optional(Type.String({ maxLength: 2048 })) }) }

  app.get(ROUTES.roundsSocket, { websocket: true, onRequest: checkOrigin, schema }, (socket: WebSocket) => {
    const session = rounds.connect({
      send: (message) => socket.send(JSON.stringify(message)),
      close: (code, reason) => socket.close(code, reason),
    })
    // Attached synchronously, before any await, so no message can slip past (@fastify/websocket
    // README, "Attaching event handlers").
    socket.on('message', (data, isBinary) => rounds.receive(session, toBytes(data), isBinary))
    socket.on('error', (error: Error & { code?: string }) => {
      if (error.code === WS_TOO_LARGE) rounds.oversized(session)
    })
    socket.on('close', () => rounds.disconnect(session))
  })
}

export default fp(roundsPlugin, {
  name: 'hearth-rounds',
  fastify: '5.x',
  decorators: { fastify: ['hearth'] },
  dependencies: ['@fastify/websocket'],
})
