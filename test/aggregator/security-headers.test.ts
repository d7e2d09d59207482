/**
 * Security headers on every response (`plugins/security-headers.ts`): a locked-down policy on
 * the API, the dashboard's own policy on its page, caching and CORS left as they were.
 */
import { expect, test } from 'vitest'
import { MemoryStore } from '../../aggregator/store/memory-store.ts'
import { ROUTES } from '../../protocol/messages.ts'
import { TINY, useApp } from './helpers.ts'
import type { RunningApp } from './helpers.ts'

const API_CSP = "default-src 'none';frame-ancestors 'none'"
const server = useApp()

function start(corsOrigins?: readonly string[]): Promise<RunningApp> {
  return server.start({ store: new MemoryStore(), adminToken: 'security-headers-admin-token', ...(corsOrigins === undefined ? {} : { corsOrigins }) })
}

function expectApiHeaders(response: Response, resourcePolicy: 'cross-origin' | 'same-origin'): void {
  expect(response.headers.get('content-security-policy')).toBe(API_CSP)
  expect(response.headers.get('x-content-type-options')).toBe('nosniff')
  expect(response.headers.get('referrer-policy')).toBe('no-referrer')
  expect(response.headers.get('x-frame-options')).toBe('DENY')
  expect(response.headers.get('strict-transport-security')).toMatch(/^max-age=\d+/)
  expect(response.headers.get('cross-origin-resource-policy')).toBe(resourcePolicy)
}

test('API answers, errors included, carry the locked-down policy; client resources stay readable cross-origin', async () => {
  const { url } = await start()
  expectApiHeaders(await fetch(url + ROUTES.model(TINY.name)), 'cross-origin')
  expectApiHeaders(await fetch(url + ROUTES.health), 'cross-origin')
  const unauthorized = await fetch(url + '/admin/rounds')
  expect(unauthorized.status).toBe(401)
  expectApiHeaders(unauthorized, 'same-origin')
  const missing = await fetch(url + '/nothing/here')
  expect(missing.status).toBe(404)
  expectApiHeaders(missing, 'same-origin')
  const invalid = await fetch(url + ROUTES.modelVersion(TINY.name, 0))
  expect(invalid.status).toBe(400)
  expectApiHeaders(invalid, 'cross-origin')
})

test('model downloads keep their caching: immutable versions, revalidated latest, 304 on a matching ETag', async () => {
  const { url } = await start()
  const version = await fetch(url + ROUTES.modelVersion(TINY.name, 1))
  expect(version.status).toBe(200)
  expectApiHeaders(version, 'cross-origin')
  expect(version.headers.get('cache-control')).toBe('public, max-age=31536000, immutable')
  const etag = version.headers.get('etag')
  expect(etag).toMatch(/^"/)
  const again = await fetch(url + ROUTES.modelVersion(TINY.name, 1), { headers: { 'if-none-match': etag ?? '' } })
  expect(again.status).toBe(304)
  expect(again.headers.get('etag')).toBe(etag)
  const latest = await fetch(url + ROUTES.modelVersion(TINY.name, 'latest'))
  expect(latest.headers.get('cache-control')).toBe('no-cache')
  expect(latest.headers.get('etag')).toBe(etag)
  expectApiHeaders(latest, 'cross-origin')
})

test('the dashboard keeps its own policy, with the other headers', async () => {
  const { url } = await start()
  const page = await fetch(url + '/dashboard/')
  expect(page.status).toBe(200)
  const csp = page.headers.get('content-security-policy') ?? ''
  expect(csp.split(';')).toEqual(expect.arrayContaining(["default-src 'self'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"]))
  expect(csp).not.toContain("default-src 'none'")
  expect(page.headers.get('x-content-type-options')).toBe('nosniff')
  expect(page.headers.get('x-frame-options')).toBe('DENY')
  expect(page.headers.get('cross-origin-resource-policy')).toBe('same-origin')
})

test('CORS stays restricted to the configured origins on model downloads', async () => {
  const { url } = await start(['https://shop.example'])
  const download = ROUTES.modelVersion(TINY.name, 1)
  const allowed = await fetch(url + download, { headers: { origin: 'https://shop.example' } })
  expect(allowed.headers.get('access-control-allow-origin')).toBe('https://shop.example')
  expect(allowed.headers.get('access-control-expose-headers')).toMatch(/Retry-After/)
  const denied = await fetch(url + download, { headers: { origin: 'https://evil.example' } })
  expect(denied.status).toBe(200)
  expect(denied.headers.get('access-control-allow-origin')).toBeNull()
  const preflight = await fetch(url + download, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET' } })
  expect(preflight.headers.get('access-control-allow-origin')).toBeNull()
})
