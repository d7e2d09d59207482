/**
 * `GET /admin/live` (WebSocket): pushes what the dashboard shows — the latest rounds with their
 * stage and counts, the models, the counters and the latest audit entries — whenever it changes.
 *
 * Browsers cannot set an `Authorization` header on a WebSocket, so when an admin token is set
 * the first message must be `{"type":"auth","token":"..."}` (compared in constant time); until
 * then nothing is sent, and a wrong or missing token closes the socket with 4401. The page also
 * has to come from an allowed origin: this aggregator's own (the dashboard) or a configured CORS
 * origin, since browsers do not guard WebSocket upgrades with CORS.
 *
 * Snapshots are built from memory and the store on one shared timer, only while someone is
 * connected, and sent only when they differ from the last one sent.
 */
import type { FastifyPluginAsync } from 'fastify'
import fp from 'fastify-plugin'
import type { WebSocket } from 'ws'
import type { CountersSnapshot } from '../counters.ts'
import type { AuditEntry, RoundRecord } from '../store/store.ts'
import { secretEquals } from '../auth.ts'
import { currentRounds } from './admin.ts'

/** How many of the latest rounds a snapshot carries. */
export const LIVE_ROUNDS = 25
/** How many of the latest audit entries a snapshot carries. */
export const LIVE_AUDIT_ENTRIES = 20
const PUSH_INTERVAL_MS = 500
const AUTH_TIMEOUT_MS = 5_000
/** Close code for a refused token (the 4000–4999 range is the application's, RFC 6455 §7.4.2). */
export const UNAUTHORIZED_CLOSE = 4401

/** What the dashboard receives. */
export interface LiveSnapshot {
  readonly type: 'snapshot'
  readonly at: number
  /** The latest rounds, newest first. */
  readonly rounds: readonly RoundRecord[]
  readonly models: readonly { readonly name: string; readonly latestVersion: number; readonly latestVersionAt: number }[]
  readonly counters: CountersSnapshot
  /** The latest audit entries, newest first. */
  readonly audit: readonly AuditEntry[]
}

const liveSocketPlugin: FastifyPluginAsync = async (app) => {
  const { options, registry, counters, store } = app.hearth
  const token = options.adminToken
  const listeners = new Map<WebSocket, string>() // socket → last JSON sent
  let timer: NodeJS.Timeout | null = null

  const snapshot = async (): Promise<string> => {
    const [rounds, audit] = await Promise.all([currentRounds(app.hearth, { limit: LIVE_ROUNDS }), store.listAudit({ limit: LIVE_AUDIT_ENTRIES })])
    const models = registry.names().map((name) => {
      const latest = registry.latest(name)
      return { name, latestVersion: latest.version, latestVersionAt: latest.createdAt }
    })
    // `at` is added after the comparison so that an unchanged state is not re-sent.
    const state: Omit<LiveSnapshot, 'at'> = { type: 'snapshot', rounds, models, counters: counters.snapshot(), audit }
    return JSON.stringify(state)
  }
  const push = async (sockets: Iterable<WebSocket>): Promise<void> => {
    const json = await snapshot()
    for (const socket of sockets) {
      if (listeners.get(socket) === json || socket.readyState !== socket.OPEN) continue
      listeners.set(socket, json)
      socket.send(`{"at":${Date.now()},${json.slice(1)}`)
    }
  }
  const tick = (): void => {
    push(listeners.keys()).catch((error: unknown) => app.log.warn({ err: error }, 'live snapshot failed'))
  }
  const listen = (socket: WebSocket): void => {
    listeners.set(socket, '')
    timer ??= setInterval(tick, PUSH_INTERVAL_MS)
    void push([socket]).catch((error: unknown) => app.log.warn({ err: error }, 'live snapshot failed'))
  }
  const forget = (socket: WebSocket): void => {
    listeners.delete(socket)
    if (listeners.size === 0 && timer !== null) {
      clearInterval(timer)
      timer = null
    }
  }
  app.addHook('onClose', async () => {
    if (timer !== null) clearInterval(timer)
    timer = null
  })

  app.get('/admin/live', { websocket: true }, (socket, request) => {
    if (!originAllowed(request.headers.origin, request.headers.host, options.corsOrigins)) {
      socket.close(1008, 'origin not allowed')
      return
    }
    socket.on('close', () => forget(socket))
    if (token === undefined) {
      listen(socket)
      return
    }
    const deadline = setTimeout(() => socket.close(UNAUTHORIZED_CLOSE, 'no auth message'), AUTH_TIMEOUT_MS)
    socket.once('message', (data) => {
      clearTimeout(deadline)
      let given: unknown
      try {
        given = (JSON.parse(String(data)) as { type?: unknown; token?: unknown }).token
      } catch {
        given = undefined
      }
      if (typeof given === 'string' && secretEquals(given, token)) listen(socket)
      else socket.close(UNAUTHORIZED_CLOSE, 'invalid admin token')
    })
  })
}

/** Same origin as the aggregator (its dashboard), a configured origin, or any in development. */
function originAllowed(origin: string | undefined, host: string | undefined, corsOrigins: readonly string[] | undefined): boolean {
  if (origin === undefined) return true // not a browser
  if (corsOrigins === undefined || corsOrigins.includes(origin)) return true
  try {
    return new URL(origin).host === host
  } catch {
    return false
  }
}

export default fp(liveSocketPlugin, { name: 'hearth-admin-live', fastify: '5.x', decorators: { fastify: ['hearth'] } })
