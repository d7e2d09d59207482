/**
 * `GET /openapi.json` (plugins/openapi.ts) against the routes the app really registers: every
 * route Fastify is told of (seen through an `onRoute` hook on the real instance) must be in the
 * document with a success response, so a route added without a schema fails here.
 */
import { afterEach, describe, expect, test, vi } from 'vitest'
import type * as FastifyModule from 'fastify'
import type { FastifyInstance, RouteOptions } from 'fastify'
import { buildApp } from '../../aggregator/app.ts'
import { MemoryStore } from '../../aggregator/store/memory-store.ts'
import { TINY } from './helpers.ts'

/** Every route registered on an app built since the last reset, as Fastify announced it. */
const seen = vi.hoisted(() => [] as RouteOptions[])

// The real Fastify, with an onRoute hook added as each instance is created (before any route).
vi.mock('fastify', async (importOriginal) => {
  const actual = await importOriginal<typeof FastifyModule>()
  const observed = ((options?: Parameters<typeof actual.default>[0]) => {
    const app = actual.default(options)
    app.addHook('onRoute', (route) => void seen.push(route))
    return app
  }) as typeof actual.default
  return { ...actual, default: observed }
})

/** Routes that are deliberately not API operations, and why. */
const NOT_OPERATIONS = new Set([
  'OPTIONS *', // @fastify/cors answers preflight requests for every path
  'GET /dashboard/*', // the dashboard's static files (@fastify/static)
])

interface Operation {
  readonly tags?: readonly string[]
  readonly security?: readonly Record<string, unknown>[]
  readonly responses?: Readonly<Record<string, unknown>>
  readonly requestBody?: unknown
}
interface OpenApiDocument {
  readonly openapi: string
  readonly paths: Readonly<Record<string, Readonly<Record<string, Operation>>>>
  readonly components: { readonly securitySchemes: Readonly<Record<string, { type: string; scheme?: string }>> }
}

let app: FastifyInstance | undefined

afterEach(async () => {
  await app?.close()
  app = undefined
  seen.length = 0
})

/** `/admin/rounds/:id/start` as OpenAPI writes it: `/admin/rounds/{id}/start`. */
function openApiPath(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')
}

describe('GET /openapi.json', () => {
  test('is OpenAPI 3 and describes every registered route, tagged, with its responses', async () => {
    app = await buildApp({ store: new MemoryStore(), models: [TINY], adminToken: 'openapi-test-token-0123' })
    const response = await app.inject({ method: 'GET', url: '/openapi.json' })
    expect(response.statusCode).toBe(200)
    const document = response.json<OpenApiDocument>()
    expect(document.openapi).toMatch(/^3\.\d+\.\d+$/)
    expect(document.components.securitySchemes.adminToken).toMatchObject({ type: 'http', scheme: 'bearer' })

    const routes = seen.flatMap((route) => (Array.isArray(route.method) ? route.method : [route.method]).map((method) => ({ method: method.toUpperCase(), url: route.url })))
    const operations = routes.filter((r) => r.method !== 'HEAD' && !NOT_OPERATIONS.has(`${r.method} ${r.url}`))
    expect(operations.length).toBeGreaterThan(15)
    for (const { method, url } of operations) {
      const operation = document.paths[openApiPath(url)]?.[method.toLowerCase()]
      expect(operation, `${method} ${url} is not in the document`).toBeDefined()
      const codes = Object.keys(operation?.responses ?? {})
      expect(codes.some((code) => /^[123]\d\d$/.test(code)), `${method} ${url} declares no success response: ${codes.join(', ')}`).toBe(true)
      const tag = url.startsWith('/v1/') ? 'client' : url.startsWith('/admin') ? 'admin' : 'operations'
      expect(operation?.tags, `${method} ${url}`).toEqual([tag])
      if (tag === 'admin') expect(operation?.security, `${method} ${url}`).toEqual([{ adminToken: [] }])
    }
    // `/metrics` is tagged `operations`, but it is behind the admin token all the same.
    const metrics = await app.inject({ method: 'GET', url: '/metrics' })
    expect(metrics.statusCode).toBe(401)
    expect(document.paths['/metrics']?.get?.security).toEqual([{ adminToken: [] }])
    // Nothing in the document that the app does not serve.
    const served = new Set(operations.map((r) => `${r.method.toLowerCase()} ${openApiPath(r.url)}`))
    for (const [path, methods] of Object.entries(document.paths)) for (const method of Object.keys(methods)) expect(served, `${method} ${path}`).toContain(`${method} ${path}`)
  })

  test('describes the round routes: the document body, the problems of a refusal, start and stop', async () => {
    app = await buildApp({ store: new MemoryStore(), models: [TINY] })
    const { paths } = (await app.inject({ method: 'GET', url: '/openapi.json' })).json<OpenApiDocument>()
    const create = paths['/admin/rounds']?.post
    expect(Object.keys(create?.responses ?? {})).toEqual(expect.arrayContaining(['201', '400']))
    expect(JSON.stringify(create?.requestBody)).toContain('"cohort"')
    expect(JSON.stringify(create?.responses?.['400'])).toContain('"problems"')
    expect(JSON.stringify(paths['/admin/rounds/{id}/start']?.post?.responses?.['200'])).toContain('"begins"')
    expect(JSON.stringify(paths['/admin/rounds/{id}/stop']?.post?.requestBody)).toContain('"reason"')
    expect(Object.keys(paths['/v1/rounds/socket']?.get?.responses ?? {})).toContain('101')
  })
})
