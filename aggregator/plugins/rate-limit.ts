/**
 * Per-address rate limit (@fastify/rate-limit) on the client endpoints registered after it in
 * the same context: `buildApp` registers it once before the model routes and once before the
 * round socket, so downloads and connection attempts are counted apart and `/health`, `/ready`
 * and `/admin` stay outside it. A request over the limit is refused before its handler runs
 * with 429, `Retry-After` (seconds) and `HEARTH_ERR_RATE_LIMITED`; for the socket that is the
 * HTTP answer to the upgrade. Each refusal is counted in `hearth_rejected_messages_total`.
 *
 * The count lives in this process's memory (a fixed window per address), which matches the one
 * coordinator this aggregator runs as (README, "Several replicas").
 */
import rateLimit from '@fastify/rate-limit'
import type { FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import { HearthError } from '../../protocol/errors.ts'

const rateLimitPlugin: FastifyPluginAsync = async (app) => {
  const { options, counters } = app.hearth
  const limit = options.rateLimit
  if (limit === false) return
  await app.register(rateLimit, {
    max: limit.max,
    timeWindow: limit.timeWindowMs,
    onExceeded: () => counters.reject('HEARTH_ERR_RATE_LIMITED'),
    // Thrown, so the errors plugin answers with the usual body; the headers are already set.
    errorResponseBuilder: (_request, context) => new HearthError('HEARTH_ERR_RATE_LIMITED', `retry in ${context.after}`),
  })
}

export default fp(rateLimitPlugin, { name: 'hearth-rate-limit', fastify: '5.x', decorators: { fastify: ['hearth'] } })
