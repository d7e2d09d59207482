/**
 * `GET /metrics`: Prometheus text exposition (prom-client), behind the admin token when one is
 * set (Prometheus scrapes with `authorization: { credentials: ... }`).
 *
 * Counters are read from `app.hearth.counters` at scrape time, so the round engine knows nothing
 * about Prometheus; stage durations arrive as they happen and go into a histogram. Each app has
 * its own registry, so several aggregators in one process (tests) do not collide.
 */
import type { FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { Type } from 'typebox'
import type { AggregatorCounters, CountersSnapshot } from '../counters.ts'
import { adminGuard } from './admin.ts'
import { ADMIN_SECURITY } from './openapi.ts'

/** Upper bounds (seconds) of the stage-duration buckets: from a quick check-in to a long training stage. */
const STAGE_BUCKETS_S = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600]

/** Builds the registry whose metrics mirror `counters`. Exported for tests. */
export function createMetricsRegistry(counters: AggregatorCounters): { registry: Registry; stop: () => void } {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'hearth_' })
  // Each collector takes its own snapshot: a few integers, and no reliance on collection order.
  const read = (): CountersSnapshot => counters.snapshot()

  new Gauge({
    name: 'hearth_connected_clients',
    help: 'Client sessions connected over WebSocket.',
    registers: [registry],
    collect() {
      this.set(read().connectedClients)
    },
  })
  // prom-client counters only go up through inc(); reset-then-inc mirrors a monotonic source.
  const mirror = (name: string, help: string, value: (s: CountersSnapshot) => number): void => {
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset()
        this.inc(value(read()))
      },
    })
  }
  mirror('hearth_bytes_received_total', 'Bytes of client messages received.', (s) => s.bytesReceived)
  mirror('hearth_sessions_checked_in_total', 'Client check-ins accepted.', (s) => s.sessionsCheckedIn)
  mirror('hearth_uploads_accepted_total', 'Updates accepted into a round.', (s) => s.uploadsAccepted)
  mirror('hearth_participants_dropped_total', 'Selected clients that left before uploading.', (s) => s.participantsDropped)
  mirror('hearth_rounds_started_total', 'Rounds that selected a cohort.', (s) => s.roundsStarted)
  new Counter({
    name: 'hearth_rounds_total',
    help: 'Finished rounds by outcome.',
    labelNames: ['outcome'],
    registers: [registry],
    collect() {
      const s = read()
      this.reset()
      this.inc({ outcome: 'published' }, s.roundsPublished)
      this.inc({ outcome: 'aborted' }, s.roundsAborted)
    },
  })
  new Counter({
    name: 'hearth_rejected_messages_total',
    help: 'Client messages, sessions and requests rejected (rate limits included), by error code.',
    labelNames: ['code'],
    registers: [registry],
    collect() {
      this.reset()
      for (const [code, count] of Object.entries(read().rejections)) this.inc({ code }, count ?? 0)
    },
  })
  const stages = new Histogram({
    name: 'hearth_round_stage_duration_seconds',
    help: 'How long each round stage took.',
    labelNames: ['stage'],
    buckets: STAGE_BUCKETS_S,
    registers: [registry],
  })
  const stop = counters.onStage((stage, ms) => stages.observe({ stage }, ms / 1000))
  return { registry, stop }
}

const metricsPlugin: FastifyPluginAsync = async (app) => {
  const { registry, stop } = createMetricsRegistry(app.hearth.counters)
  app.addHook('onClose', async () => {
    stop()
  })
  const schema = { security: ADMIN_SECURITY, response: { 200: { description: 'Prometheus text exposition format', content: { 'text/plain': { schema: Type.String() } } } } }
  app.get('/metrics', { onRequest: adminGuard(app.hearth.options.adminToken), schema }, async (_request, reply) => {
    const body = await registry.metrics()
    return reply.header('cache-control', 'no-store').type(registry.contentType).send(body)
  })
}

export default fp(metricsPlugin, { name: 'hearth-metrics', fastify: '5.x' })
