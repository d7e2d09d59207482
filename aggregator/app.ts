/**
 * `buildApp` assembles the aggregator as a Fastify instance and never listens (Fastify's
 * testing guide: `inject()` for route contracts, `listen()` in `server.ts`).
 *
 * Plugins, one concern each: security headers (every response), errors (one error shape), the
 * admin lockout (failed tokens), health and models (client endpoints, behind CORS; models
 * rate-limited), rounds (the WebSocket, rate-limited on its own), and behind the admin token:
 * admin (round history), privacy (the privacy ledger), admin-models (models, versions,
 * rollback), admin-audit (the audit log), admin-live (the dashboard's push), admin-rounds
 * (rounds created, started and stopped by operators); and openapi (`/openapi.json`, learned from
 * every route's schema). Shared state is decorated as `app.hearth` (see `context.ts`).
 */
import { randomUUID } from 'node:crypto'
import cors from '@fastify/cors'
import { TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import websocket from '@fastify/websocket'
import Fastify from 'fastify'
import type { FastifyInstance } from 'fastify'
import { CLIP_INDICATOR_ELEMENTS } from '../protocol/clip.ts'
import { FRAME_HEADER_BYTES } from '../protocol/frames.ts'
import { RoundAudit } from './audit/audit-log.ts'
import type { AggregatorContext } from './context.ts'
import { Cluster } from './cluster/cluster.ts'
import { AggregatorCounters } from './counters.ts'
import { ModelRegistry } from './models/registry.ts'
import { resolveOptions } from './options.ts'
import type { AggregatorOptions, ResolvedOptions } from './options.ts'
import adminPlugin from './plugins/admin.ts'
import adminAuditPlugin from './plugins/admin-audit.ts'
import errorsPlugin from './plugins/errors.ts'
import healthPlugin from './plugins/health.ts'
import metricsPlugin from './plugins/metrics.ts'
import adminLivePlugin from './plugins/admin-live.ts'
import adminLockoutPlugin from './plugins/admin-lockout.ts'
import adminModelsPlugin from './plugins/admin-models.ts'
import adminRoundsPlugin from './plugins/admin-rounds.ts'
import dashboardPlugin from './plugins/dashboard.ts'
import modelsPlugin from './plugins/models.ts'
import openapiPlugin from './plugins/openapi.ts'
import privacyPlugin from './plugins/privacy.ts'
import rateLimitPlugin from './plugins/rate-limit.ts'
import roundsPlugin from './plugins/rounds.ts'
import securityHeadersPlugin, { crossOriginReadable } from './plugins/security-headers.ts'
import { cryptoUniform } from './random.ts'
import { controlMessageLimit } from './rounds/client-messages.ts'
import { RoundService } from './rounds/service.ts'
import { openStore } from './store/open-store.ts'

/** Header naming a request's id, taken from the caller when given and sent back on every answer. */
export const REQUEST_ID_HEADER = 'x-request-id'

/** The reason recorded for rounds found in flight at startup. */
export const RESTART_REASON = 'aggregator restarted'

/**
 * Builds the aggregator. Opens (or creates) the store, aborts rounds an earlier process left in
 * flight, creates configured models that do not exist yet, and registers the plugins. Round
 * engines start at once; sessions arrive once the caller listens. `close()` ends running rounds
 * (see `RoundEngine.close`), closes the sockets, then the store.
 *
 * @throws HearthError `HEARTH_ERR_INVALID_CONFIG` for invalid options or a stored model whose
 *   spec differs from the configured one.
 */
export async function buildApp(options: AggregatorOptions = {}): Promise<FastifyInstance> {
  const resolved = resolveOptions(options)
  const app = Fastify({
    logger: resolved.logger,
    // The only bodies are small admin commands (a rollback, a round document of a few hundred
    // bytes); refuse big ones before buffering them.
    bodyLimit: 16 * 1024,
    trustProxy: typeof resolved.trustProxy === 'object' ? [...resolved.trustProxy] : resolved.trustProxy,
    // Every log line of a request carries its id (pino's reqId): the load balancer's
    // X-Request-Id when it sends a sane one, so one id follows the request through both logs.
    requestIdHeader: false,
    genReqId: (request) => {
      const given = request.headers[REQUEST_ID_HEADER]
      return typeof given === 'string' && /^[\w.:-]{1,128}$/.test(given) ? given : randomUUID()
    },
  }).withTypeProvider<TypeBoxTypeProvider>()
  app.addHook('onRequest', async (request, reply) => {
    reply.header(REQUEST_ID_HEADER, request.id)
  })
  app.setValidatorCompiler(TypeBoxValidatorCompiler)
  for (const warning of resolved.warnings) app.log.warn(warning)

  const context = await openContext(app, resolved)
  app.decorate('hearth', context)
  // Hooks run in the order added, so this one runs before @fastify/websocket's own preClose
  // closes the sockets: participants of a running round still hear how it ended.
  app.addHook('preClose', async () => {
    await context.rounds.close()
    // After the engines: their groups have reported and their coordinated rounds have ended.
    await context.cluster?.close()
  })
  app.addHook('onClose', async () => {
    // The rounds ended in preClose; their outcomes must reach the audit log before the store closes.
    await context.audit.settled()
    await context.store.close()
  })

  // Before every route, so that every response carries the headers, errors and 404s included.
  await app.register(securityHeadersPlugin)
  await app.register(errorsPlugin)
  // Before the routes: it learns each one as it is added.
  await app.register(openapiPlugin)
  // First among the routes, so it can refuse upgrades on every other route.
  await app.register(websocket, {
    options: { maxPayload: context.maxMessageBytes },
    errorHandler: (error, socket, request) => {
      // Socket-level errors (oversized message, bad frame, reset): `ws` has already begun
      // closing with the fitting code; terminating here could cut off that close frame.
      request.log.info({ err: error }, 'websocket error')
      if (socket.readyState === socket.OPEN) socket.close(1011, 'internal error')
    },
  })
  // After @fastify/websocket, whose onRequest hook must run for a refused upgrade too: its
  // onResponse hook then closes the socket (else the refused connection lingers and close() hangs).
  await app.register(adminLockoutPlugin)
  await app.register(async (clientApi) => {
    // Encapsulated: CORS applies to the client endpoints only, not to /admin.
    await clientApi.register(cors, {
      origin: resolved.corsOrigins === undefined ? '*' : [...resolved.corsOrigins],
      methods: ['GET', 'HEAD'],
      exposedHeaders: ['ETag', 'Content-Location', 'Retry-After'],
      maxAge: 600,
    })
    clientApi.addHook('onRequest', crossOriginReadable)
    await clientApi.register(healthPlugin)
    // After health: load balancers probe /health and /ready often from few addresses.
    await clientApi.register(rateLimitPlugin)
    await clientApi.register(modelsPlugin)
  })
  await app.register(async (socketApi) => {
    // A limit of its own: connection attempts do not eat into the download budget.
    await socketApi.register(rateLimitPlugin)
    await socketApi.register(roundsPlugin)
  })
  await app.register(adminPlugin)
  await app.register(adminRoundsPlugin)
  await app.register(privacyPlugin)
  await app.register(metricsPlugin)
  await app.register(adminModelsPlugin)
  await app.register(adminAuditPlugin)
  await app.register(adminLivePlugin)
  await app.register(dashboardPlugin)
  return app as unknown as FastifyInstance
}

async function openContext(app: { log: FastifyInstance['log'] }, resolved: ResolvedOptions): Promise<AggregatorContext> {
  const store = await openStore(resolved, app.log)
  const audit = new RoundAudit(store, app.log)
  let cluster: Cluster | undefined
  try {
    // A cluster replica leaves the other replicas' rounds alone: the one that takes a model's
    // coordinator lease aborts that model's rounds whose coordinator is gone (cluster/coordinator.ts).
    if (resolved.cluster === null) {
      const aborted = await store.abortUnfinishedRounds(RESTART_REASON, Date.now())
      if (aborted.length > 0) app.log.warn({ rounds: aborted }, 'aborted rounds left in flight by an earlier process')
      for (const id of aborted) {
        const record = await store.getRound(id)
        if (record !== undefined) audit.roundEnded(record)
      }
    }
    const registry = await ModelRegistry.open({
      store,
      models: resolved.models,
      uniform: cryptoUniform(),
      now: Date.now,
      log: app.log,
    })
    const counters = new AggregatorCounters()
    if (resolved.cluster !== null && resolved.rounds.secagg !== null) {
      cluster = await Cluster.start({ settings: resolved.cluster, secagg: resolved.rounds.secagg, registry, log: app.log })
    }
    const rounds = await RoundService.create({
      registry,
      store,
      counters,
      rounds: resolved.rounds,
      appKeys: resolved.appKeys,
      log: app.log,
      onRoundEnd: (record) => audit.roundEnded(record),
      ...(cluster === undefined ? {} : { createEngine: cluster.createEngine }),
    })
    cluster?.begin()
    // The largest legitimate message is an Update frame of the largest model (with the clipping
    // indicator when DP is on).
    const uploadElements = registry.largestVectorLength() + (resolved.rounds.privacy === null ? 0 : CLIP_INDICATOR_ELEMENTS)
    const maxMessageBytes = Math.max(FRAME_HEADER_BYTES + 4 * uploadElements, controlMessageLimit(resolved.rounds.secagg))
    return { options: resolved, store, registry, rounds, audit, counters, maxMessageBytes, cluster }
  } catch (error) {
    await cluster?.close()
    await audit.settled()
    await store.close()
    throw error
  }
}
