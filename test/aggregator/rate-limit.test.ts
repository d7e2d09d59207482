/**
 * Per-address rate limits on the client endpoints (`plugins/rate-limit.ts`) and the lockout
 * after failed admin tokens (`plugins/admin-lockout.ts`): over real sockets where the address
 * matters, with `inject` (and its `remoteAddress`) for the rest.
 */
import type { FastifyInstance } from 'fastify'
import WebSocket from 'ws'
import { afterEach, describe, expect, test } from 'vitest'
import { buildApp } from '../../aggregator/app.ts'
import { parseStartArgs } from '../../aggregator/cli/aggregator-command.ts'
import { UsageError } from '../../aggregator/cli/command.ts'
import { DEFAULT_RATE_LIMIT, resolveOptions } from '../../aggregator/options.ts'
import type { AggregatorOptions } from '../../aggregator/options.ts'
import { ADMIN_LOCKOUT, FailureWindows } from '../../aggregator/plugins/admin-lockout.ts'
import { MemoryStore } from '../../aggregator/store/memory-store.ts'
import { HearthError } from '../../protocol/errors.ts'
import { ROUTES } from '../../protocol/messages.ts'
import { APP_KEY, listen, TestClient, TINY } from './helpers.ts'
import type { RunningApp } from './helpers.ts'

const ADMIN_TOKEN = 'rate-limit-test-admin-token'
const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function running(options: AggregatorOptions): Promise<RunningApp> {
  const app = await listen({ store: new MemoryStore(), ...options })
  cleanups.push(() => app.close())
  return app
}

async function built(options: AggregatorOptions): Promise<FastifyInstance> {
  const app = await buildApp({ store: new MemoryStore(), models: [TINY], appKeys: [APP_KEY], ...options })
  cleanups.push(() => app.close())
  return app
}

/** Attempts a WebSocket upgrade; resolves with 101 or the status and headers of the refusal. */
function upgrade(wsUrl: string): Promise<{ status: number; retryAfter?: string; body?: string }> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(wsUrl)
    socket.once('open', () => {
      socket.close()
      resolve({ status: 101 })
    })
    socket.once('unexpected-response', (request, response) => {
      let body = ''
      response.on('data', (chunk: Buffer) => (body += chunk.toString()))
      response.on('end', () => {
        // With this listener ws leaves the request to us (ws README, "unexpected-response").
        request.destroy()
        resolve({ status: response.statusCode ?? 0, retryAfter: response.headers['retry-after'], body })
      })
    })
    socket.once('error', reject)
  })
}

describe('client endpoints', () => {
  test('a model route answers max requests per window and address, then 429 with Retry-After, the error body and a count', async () => {
    const app = await running({ rateLimit: { max: 3, timeWindowMs: 60_000 } })
    const url = app.url + ROUTES.modelVersion(TINY.name, 1)
    for (let i = 0; i < 3; i++) expect((await fetch(url)).status).toBe(200)
    for (let i = 0; i < 2; i++) {
      const refused = await fetch(app.url + ROUTES.model(TINY.name))
      expect(refused.status).toBe(429)
      const retryAfter = Number(refused.headers.get('retry-after'))
      expect(retryAfter).toBeGreaterThan(0)
      expect(retryAfter).toBeLessThanOrEqual(60)
      expect(await refused.json()).toEqual({ code: 'HEARTH_ERR_RATE_LIMITED', message: expect.stringMatching(/^Too many requests: retry in/), statusCode: 429 })
    }
    expect(app.app.hearth.counters.snapshot().rejections.HEARTH_ERR_RATE_LIMITED).toBe(2)
    const metrics = await (await fetch(app.url + '/metrics')).text()
    expect(metrics).toContain('hearth_rejected_messages_total{code="HEARTH_ERR_RATE_LIMITED"} 2')
  })

  test('health, readiness and admin are outside it; socket upgrades have a budget of their own', async () => {
    const app = await running({ rateLimit: { max: 2, timeWindowMs: 60_000 } })
    for (let i = 0; i < 2; i++) expect((await fetch(app.url + ROUTES.model(TINY.name))).status).toBe(200)
    expect((await fetch(app.url + ROUTES.model(TINY.name))).status).toBe(429)
    for (let i = 0; i < 5; i++) {
      expect((await fetch(app.url + ROUTES.health)).status).toBe(200)
      expect((await fetch(app.url + ROUTES.ready)).status).toBe(200)
      expect((await fetch(app.url + '/admin/rounds')).status).toBe(200)
    }
    // The downloads' budget is spent, the sockets' is not.
    const client = await TestClient.checkedIn(app.wsUrl)
    expect((await upgrade(app.wsUrl)).status).toBe(101)
    const refused = await upgrade(app.wsUrl)
    expect(refused.status).toBe(429)
    expect(Number(refused.retryAfter)).toBeGreaterThan(0)
    expect(JSON.parse(refused.body ?? '')).toMatchObject({ code: 'HEARTH_ERR_RATE_LIMITED', statusCode: 429 })
    // The limit counts connection attempts: a socket already open stays open.
    expect(client.socket.readyState).toBe(WebSocket.OPEN)
    expect(app.app.hearth.counters.snapshot().rejections.HEARTH_ERR_RATE_LIMITED).toBe(2)
    client.close()
  })

  test('each address has its own budget; X-Forwarded-For counts only from a trusted proxy', async () => {
    const direct = await built({ rateLimit: { max: 1, timeWindowMs: 60_000 } })
    const get = (app: FastifyInstance, remoteAddress: string, forwarded?: string) =>
      app.inject({ url: ROUTES.model(TINY.name), remoteAddress, headers: forwarded === undefined ? {} : { 'x-forwarded-for': forwarded } })
    expect((await get(direct, '198.51.100.1')).statusCode).toBe(200)
    expect((await get(direct, '198.51.100.1')).statusCode).toBe(429)
    expect((await get(direct, '198.51.100.2')).statusCode).toBe(200)
    // Untrusted, the header is ignored: a client cannot mint itself new addresses.
    expect((await get(direct, '198.51.100.2', '203.0.113.9')).statusCode).toBe(429)

    const proxied = await built({ rateLimit: { max: 1, timeWindowMs: 60_000 }, trustProxy: ['10.0.0.0/8'] })
    expect((await get(proxied, '10.1.2.3', '203.0.113.1')).statusCode).toBe(200)
    expect((await get(proxied, '10.1.2.3', '203.0.113.2')).statusCode).toBe(200)
    expect((await get(proxied, '10.1.2.3', '203.0.113.1')).statusCode).toBe(429)
  })

  test('defaults, validation, off, and the command line', async () => {
    expect(resolveOptions().rateLimit).toEqual(DEFAULT_RATE_LIMIT)
    expect(() => resolveOptions({ rateLimit: { max: 0, timeWindowMs: 1000 } })).toThrow(/rateLimit.max/)
    expect(() => resolveOptions({ rateLimit: { max: 10, timeWindowMs: 1.5 } })).toThrow(HearthError)
    expect(() => resolveOptions({ trustProxy: [] })).toThrow(/trustProxy/)
    expect(resolveOptions({ rateLimit: false }).warnings).toContainEqual(expect.stringMatching(/rate limiting is off/))

    const open = await built({ rateLimit: false })
    for (let i = 0; i < 20; i++) expect((await open.inject({ url: ROUTES.model(TINY.name) })).statusCode).toBe(200)

    const options = (argv: string[]) => {
      const command = parseStartArgs(argv, {})
      if (command.help) throw new Error('help')
      return command.options
    }
    expect(options(['--rate-limit', '100', '--rate-window', '1000']).rateLimit).toEqual({ max: 100, timeWindowMs: 1000 })
    expect(options(['--rate-window', '5000']).rateLimit).toEqual({ max: DEFAULT_RATE_LIMIT.max, timeWindowMs: 5000 })
    expect(options(['--rate-limit', 'off']).rateLimit).toBe(false)
    expect(options([]).rateLimit).toBeUndefined()
    expect(options(['--trust-proxy', '10.0.0.0/8', '--trust-proxy', '192.0.2.1']).trustProxy).toEqual(['10.0.0.0/8', '192.0.2.1'])
    expect(() => options(['--rate-limit', 'many'])).toThrow(UsageError)
    expect(() => options(['--rate-limit', 'off', '--rate-window', '10'])).toThrow(UsageError)
  })
})

describe('failed admin tokens', () => {
  test(`${ADMIN_LOCKOUT.failures} failures lock an address out of every admin route, right token or not; other addresses are unaffected`, async () => {
    const app = await built({ adminToken: ADMIN_TOKEN })
    const admin = (url: string, token: string, remoteAddress = '198.51.100.7') =>
      app.inject({ url, remoteAddress, headers: { authorization: `Bearer ${token}` } })
    expect((await admin('/admin/rounds', ADMIN_TOKEN)).statusCode).toBe(200)
    for (let i = 0; i < ADMIN_LOCKOUT.failures; i++) expect((await admin('/admin/rounds', `wrong-token-${i}`)).statusCode).toBe(401)

    for (const url of ['/admin/rounds', '/metrics', '/admin/audit']) {
      const locked = await admin(url, ADMIN_TOKEN)
      expect(locked.statusCode).toBe(429)
      expect(Number(locked.headers['retry-after'])).toBeGreaterThan(ADMIN_LOCKOUT.windowMs / 1000 - 60)
      expect(locked.json()).toMatchObject({ code: 'HEARTH_ERR_RATE_LIMITED', statusCode: 429 })
    }
    expect((await admin('/admin/rounds', ADMIN_TOKEN, '198.51.100.8')).statusCode).toBe(200)
    // Client endpoints stay open to the locked-out address.
    expect((await app.inject({ url: ROUTES.model(TINY.name), remoteAddress: '198.51.100.7' })).statusCode).toBe(200)
    expect(app.hearth.counters.snapshot().rejections.HEARTH_ERR_RATE_LIMITED).toBe(3)
  })

  test("a locked-out address cannot open the dashboard's live socket either", async () => {
    const app = await running({ adminToken: ADMIN_TOKEN })
    const live = app.url.replace(/^http/, 'ws') + '/admin/live'
    expect((await upgrade(live)).status).toBe(101)
    for (let i = 0; i < ADMIN_LOCKOUT.failures; i++) {
      expect((await fetch(app.url + '/metrics', { headers: { authorization: 'Bearer not-the-admin-token' } })).status).toBe(401)
    }
    const refused = await upgrade(live)
    expect(refused.status).toBe(429)
    expect(Number(refused.retryAfter)).toBeGreaterThan(0)
  })

  test('a window counts failures up to the limit, then ends', () => {
    let now = 0
    const windows = new FailureWindows(3, 1000, () => now)
    windows.fail('a')
    windows.fail('a')
    expect(windows.blockedFor('a')).toBe(0)
    windows.fail('a')
    now = 400
    expect(windows.blockedFor('a')).toBe(600)
    expect(windows.blockedFor('b')).toBe(0)
    now = 1000
    expect(windows.blockedFor('a')).toBe(0)
    windows.fail('a')
    expect(windows.blockedFor('a')).toBe(0)
  })
})
