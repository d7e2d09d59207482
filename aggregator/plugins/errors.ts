/**
 * One error shape for every HTTP failure: `{code, message, statusCode}` with a catalogue code
 * (protocol/errors.ts), whether the error is a `HearthError`, a schema validation failure, a
 * Fastify error (body too large, bad content type) or an unknown route. Unexpected errors are
 * logged in full and answered without internals.
 */
import type { FastifyError, FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { HearthError } from '../../protocol/errors.ts'
import type { ErrorCode } from '../../protocol/errors.ts'

/** Maps anything thrown while handling a request to a `HearthError`. */
export function toHearthError(error: unknown): HearthError {
  if (error instanceof HearthError) return error
  const fastifyError = error as Partial<FastifyError>
  if (fastifyError.validation !== undefined) {
    return new HearthError('HEARTH_ERR_INVALID_ARGUMENT', fastifyError.message)
  }
  const status = fastifyError.statusCode
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new HearthError(codeFor(status, fastifyError.code), fastifyError.message)
  }
  return new HearthError('HEARTH_ERR_INTERNAL', undefined, { cause: error })
}

function codeFor(status: number, fastifyCode: string | undefined): ErrorCode {
  switch (status) {
    case 401:
    case 403:
      return 'HEARTH_ERR_UNAUTHORIZED'
    case 404:
      return 'HEARTH_ERR_NOT_FOUND'
    case 413:
      return 'HEARTH_ERR_BODY_TOO_LARGE'
    case 415:
      return 'HEARTH_ERR_MALFORMED_MESSAGE'
    case 429:
      return 'HEARTH_ERR_RATE_LIMITED'
    default:
      // FST_ERR_CTP_*: the content-type parser could not read the body (Fastify, "Errors").
      return fastifyCode?.startsWith('FST_ERR_CTP_') === true ? 'HEARTH_ERR_MALFORMED_MESSAGE' : 'HEARTH_ERR_INVALID_ARGUMENT'
  }
}

async function errorsPlugin(app: FastifyInstance): Promise<void> {
  app.setErrorHandler((error, request, reply) => {
    const hearth = toHearthError(error)
    if (hearth.statusCode >= 500) request.log.error({ err: error }, 'request failed')
    else request.log.info({ code: hearth.code }, hearth.message)
    return reply.status(hearth.statusCode).send(hearth.toBody())
  })
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? request.url
    const error = new HearthError('HEARTH_ERR_NOT_FOUND', `${request.method} ${path}`)
    return reply.status(error.statusCode).send(error.toBody())
  })
}

export default fp(errorsPlugin, { name: 'hearth-errors', fastify: '5.x' })
