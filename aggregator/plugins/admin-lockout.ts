/**
 * Brute-force guard for the admin token: an address that fails admin authentication 10 times
 * within 15 minutes ({@link ADMIN_LOCKOUT}) is refused on every admin route (`/admin/*`,
 * `/metrics`, the `/admin/live` upgrade) with 429 and `Retry-After` until that window ends,
 * whatever token it sends then. Only failures count, so an operator with the right
 * token never meets it. The token itself should still be long and random (at least 16
 * characters are required): this slows guessing down, it does not replace entropy.
 *
 * Failures are seen as 401 answers on admin routes, so every guard (`adminGuard`) is covered
 * without knowing about this plugin. The dashboard's live socket checks its token in a message
 * after the upgrade and closes with 4401; those failures are not counted here, but each guess
 * costs a new connection, and a locked-out address cannot open one.
 */
import type { FastifyPluginAsync, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { HearthError } from '../../protocol/errors.ts'

/** Failed admin authentications allowed per address and window. */
export const ADMIN_LOCKOUT = { failures: 10, windowMs: 15 * 60_000 } as const

/** Addresses remembered at once; beyond it the oldest window is forgotten first. */
const MAX_TRACKED = 10_000

interface Window {
  failures: number
  readonly endsAt: number
}

/** Fixed windows of failures per address, bounded in memory. */
export class FailureWindows {
  readonly #windows = new Map<string, Window>()
  readonly #limit: number
  readonly #windowMs: number
  readonly #now: () => number

  constructor(limit: number, windowMs: number, now: () => number = Date.now) {
    this.#limit = limit
    this.#windowMs = windowMs
    this.#now = now
  }

  /** Records one failure of `key`. */
  fail(key: string): void {
    const now = this.#now()
    const window = this.#current(key, now)
    if (window !== undefined) {
      window.failures++
      return
    }
    if (this.#windows.size >= MAX_TRACKED) this.#evict(now)
    this.#windows.set(key, { failures: 1, endsAt: now + this.#windowMs })
  }

  /** Milliseconds until `key` may try again; 0 when it may now. */
  blockedFor(key: string): number {
    const now = this.#now()
    const window = this.#current(key, now)
    return window !== undefined && window.failures >= this.#limit ? window.endsAt - now : 0
  }

  #current(key: string, now: number): Window | undefined {
    const window = this.#windows.get(key)
    if (window === undefined || window.endsAt > now) return window
    this.#windows.delete(key)
    return undefined
  }

  #evict(now: number): void {
    for (const [key, window] of this.#windows) if (window.endsAt <= now) this.#windows.delete(key)
    // Insertion order is the order windows began: drop the oldest.
    const oldest = this.#windows.keys().next()
    if (this.#windows.size >= MAX_TRACKED && oldest.done !== true) this.#windows.delete(oldest.value)
  }
}

function isAdminRoute(request: FastifyRequest): boolean {
  const path = request.url.split('?')[0] ?? ''
  return path === '/admin' || path.startsWith('/admin/') || path === '/metrics'
}

const adminLockoutPlugin: FastifyPluginAsync = async (app) => {
  const { options, counters } = app.hearth
  if (options.adminToken === undefined) return // the admin API is open: there is nothing to guess
  const windows = new FailureWindows(ADMIN_LOCKOUT.failures, ADMIN_LOCKOUT.windowMs)

  app.addHook('onRequest', async (request, reply) => {
    if (!isAdminRoute(request)) return
    const ms = windows.blockedFor(request.ip)
    if (ms === 0) return
    counters.reject('HEARTH_ERR_RATE_LIMITED')
    reply.header('retry-after', Math.ceil(ms / 1000))
    throw new HearthError('HEARTH_ERR_RATE_LIMITED', `too many failed admin authentications from this address; retry in ${Math.ceil(ms / 1000)} s`)
  })
  app.addHook('onResponse', async (request, reply) => {
    if (reply.statusCode === 401 && isAdminRoute(request)) windows.fail(request.ip)
  })
}

export default fp(adminLockoutPlugin, { name: 'hearth-admin-lockout', fastify: '5.x', decorators: { fastify: ['hearth'] } })
