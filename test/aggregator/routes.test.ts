import { afterEach, describe, expect, test } from 'vitest'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../aggregator/app.ts'
import { ifNoneMatchHits } from '../../aggregator/plugins/models.ts'
import { MemoryStore } from '../../aggregator/store/memory-store.ts'
import { versionRecord } from '../../aggregator/models/weights.ts'
import type { AggregatorOptions } from '../../aggregator/options.ts'
import { decodeFrame, FrameKind } from '../../protocol/frames.ts'
import { isErrorCode } from '../../protocol/errors.ts'
import { ROUTES } from '../../protocol/messages.ts'
import type { ModelInfo } from '../../protocol/messages.ts'
import { federatedLength, mfSpec } from '../../protocol/model-spec.ts'
import { APP_KEY, TINY, TINY_LENGTH } from './helpers.ts'

let app: FastifyInstance | undefined

afterEach(async () => {
  await app?.close()
  app = undefined
})

async function build(options: AggregatorOptions = {}): Promise<FastifyInstance> {
  app = await buildApp({ store: new MemoryStore(), models: [TINY], appKeys: [APP_KEY], ...options })
  return app
}

/** Publishes version 2 of TINY directly through the registry, as a round would. */
async function publishVersion2(instance: FastifyInstance): Promise<Float32Array> {
  const { registry, store } = instance.hearth
  const weights = registry.latest(TINY.name).weights.map((x) => x + 1)
  const round = await store.createRound({
    model: TINY.name,
    baseVersion: 1,
    stage: 'done',
    config: { minCohort: 1, maxCohort: 1, selectionTimeoutMs: 1, uploadTimeoutMs: 1, training: { epochs: 1, batchSize: 1, learningRate: 1, maxExamples: 1 }, strategy: 'plain-sum', optimizer: 'fedavg' },
    createdAt: 0,
    selectedAt: 0,
    uploadDeadline: 0,
    closedAt: 0,
    eligible: 1,
    participants: 1,
    uploadsAccepted: 1,
    dropped: 0,
    rejections: {},
    outcome: 'published',
    reason: 'test',
    publishedVersion: 2,
    privacy: null,
    secagg: null,
  })
  await registry.publish(round, versionRecord(TINY.name, 2, weights, round.id, 0))
  return weights
}

function expectErrorBody(body: string, code: string, statusCode: number): void {
  const parsed = JSON.parse(body) as { code: string; message: string; statusCode: number }
  expect(parsed.code).toBe(code)
  expect(isErrorCode(parsed.code)).toBe(true)
  expect(parsed.statusCode).toBe(statusCode)
  expect(typeof parsed.message).toBe('string')
}

describe('route contracts', () => {
  test('GET /health', async () => {
    const response = await (await build()).inject({ method: 'GET', url: ROUTES.health })
    expect(response.statusCode).toBe(200)
    expect(response.json()).toEqual({ status: 'ok', protocol: 1 })
    expect(response.headers['cache-control']).toBe('no-store')
  })

  test('GET /v1/models/:model answers ModelInfo', async () => {
    const instance = await build()
    const response = await instance.inject({ method: 'GET', url: ROUTES.model(TINY.name) })
    expect(response.statusCode).toBe(200)
    const info = response.json<ModelInfo>()
    expect(info).toEqual({ name: TINY.name, latestVersion: 1, spec: mfSpec(TINY.name, TINY.mf) })
    expect(federatedLength(info.spec)).toBe(TINY_LENGTH)
  })

  test('weights are a Weights frame with id = version, matching the stored version', async () => {
    const instance = await build()
    const response = await instance.inject({ method: 'GET', url: ROUTES.modelVersion(TINY.name, 1) })
    expect(response.statusCode).toBe(200)
    expect(response.headers['content-type']).toBe('application/octet-stream')
    const frame = decodeFrame(new Uint8Array(response.rawPayload))
    expect(frame.kind).toBe(FrameKind.Weights)
    expect(frame.id).toBe(1)
    expect(Array.from(frame.values)).toEqual(Array.from(instance.hearth.registry.latest(TINY.name).weights))
  })

  test('version 1 comes from the spec’s initializers with a random source', async () => {
    const a = await (await build()).inject({ method: 'GET', url: ROUTES.modelVersion(TINY.name, 1) })
    await app?.close()
    const b = await (await build()).inject({ method: 'GET', url: ROUTES.modelVersion(TINY.name, 1) })
    const [wa, wb] = [decodeFrame(new Uint8Array(a.rawPayload)).values, decodeFrame(new Uint8Array(b.rawPayload)).values]
    // item_embedding is normal(0.1): two fresh models differ; item_bias (elements 8..11) is zeros.
    expect(Array.from(wa.subarray(0, 8))).not.toEqual(Array.from(wb.subarray(0, 8)))
    expect(Array.from(wa.subarray(8, 12))).toEqual([0, 0, 0, 0])
  })

  test('numbered versions are immutable and revalidate with a strong ETag', async () => {
    const instance = await build()
    const url = ROUTES.modelVersion(TINY.name, 1)
    const first = await instance.inject({ method: 'GET', url })
    const etag = first.headers.etag as string
    expect(etag).toMatch(/^"v1-[0-9a-f]{64}"$/)
    expect(first.headers['cache-control']).toBe('public, max-age=31536000, immutable')

    const hit = await instance.inject({ method: 'GET', url, headers: { 'if-none-match': etag } })
    expect(hit.statusCode).toBe(304)
    expect(hit.body).toBe('')
    expect(hit.headers.etag).toBe(etag)
    expect(hit.headers['cache-control']).toBe('public, max-age=31536000, immutable')
    // Weak comparison for If-None-Match (RFC 9110 §13.1.2), in a list, and `*`.
    for (const header of [`W/${etag}`, `"other", ${etag}`, '*']) {
      expect((await instance.inject({ method: 'GET', url, headers: { 'if-none-match': header } })).statusCode).toBe(304)
    }
    const miss = await instance.inject({ method: 'GET', url, headers: { 'if-none-match': '"v1-stale"' } })
    expect(miss.statusCode).toBe(200)
    expect(miss.rawPayload.equals(first.rawPayload)).toBe(true)
  })

  test('latest is revalidated on every use and its ETag moves with each published version', async () => {
    const instance = await build()
    const url = ROUTES.modelVersion(TINY.name, 'latest')
    const v1 = await instance.inject({ method: 'GET', url })
    expect(v1.headers['cache-control']).toBe('no-cache')
    expect(v1.headers['content-location']).toBe(ROUTES.modelVersion(TINY.name, 1))
    const etag1 = v1.headers.etag as string
    expect((await instance.inject({ method: 'GET', url, headers: { 'if-none-match': etag1 } })).statusCode).toBe(304)

    const weights2 = await publishVersion2(instance)
    const v2 = await instance.inject({ method: 'GET', url, headers: { 'if-none-match': etag1 } })
    expect(v2.statusCode).toBe(200)
    expect(v2.headers.etag).not.toBe(etag1)
    expect(v2.headers['content-location']).toBe(ROUTES.modelVersion(TINY.name, 2))
    const frame = decodeFrame(new Uint8Array(v2.rawPayload))
    expect(frame.id).toBe(2)
    expect(Array.from(frame.values)).toEqual(Array.from(weights2))
    // The numbered version of the same bytes carries the same ETag.
    const numbered = await instance.inject({ method: 'GET', url: ROUTES.modelVersion(TINY.name, 2) })
    expect(numbered.headers.etag).toBe(v2.headers.etag)
    // An older version is still served, from the store.
    const old = await instance.inject({ method: 'GET', url: ROUTES.modelVersion(TINY.name, 1) })
    expect(old.headers.etag).toBe(etag1)
    expect(decodeFrame(new Uint8Array(old.rawPayload)).id).toBe(1)
  })

  test('HEAD answers the headers without the body', async () => {
    const response = await (await build()).inject({ method: 'HEAD', url: ROUTES.modelVersion(TINY.name, 1) })
    expect(response.statusCode).toBe(200)
    expect(response.headers.etag).toMatch(/^"v1-/)
    expect(response.body).toBe('')
  })

  test('errors answer {code, message, statusCode} with catalogue codes', async () => {
    const instance = await build()
    const cases = [
      [ROUTES.model('nope'), 'HEARTH_ERR_UNKNOWN_MODEL', 404],
      [ROUTES.modelVersion('nope', 1), 'HEARTH_ERR_UNKNOWN_MODEL', 404],
      [ROUTES.modelVersion('nope', 'latest'), 'HEARTH_ERR_UNKNOWN_MODEL', 404],
      [ROUTES.modelVersion(TINY.name, 2), 'HEARTH_ERR_UNKNOWN_VERSION', 404],
      ['/v1/models/tiny/versions/abc', 'HEARTH_ERR_INVALID_ARGUMENT', 400],
      ['/v1/models/tiny/versions/0', 'HEARTH_ERR_INVALID_ARGUMENT', 400],
      ['/v1/models/bad%20name', 'HEARTH_ERR_INVALID_ARGUMENT', 400],
      ['/no/such/route', 'HEARTH_ERR_NOT_FOUND', 404],
      ['/admin/rounds/0', 'HEARTH_ERR_INVALID_ARGUMENT', 400],
      ['/admin/rounds/99', 'HEARTH_ERR_UNKNOWN_ROUND', 404],
      ['/admin/rounds?limit=100000', 'HEARTH_ERR_INVALID_ARGUMENT', 400],
    ] as const
    for (const [url, code, status] of cases) {
      const response = await instance.inject({ method: 'GET', url })
      expect(response.statusCode, url).toBe(status)
      expectErrorBody(response.body, code, status)
    }
    const post = await instance.inject({ method: 'POST', url: ROUTES.health, payload: { x: 1 } })
    expectErrorBody(post.body, 'HEARTH_ERR_NOT_FOUND', 404)
  })

  test('CORS: every origin by default, only the allow-list when configured, never on /admin', async () => {
    const open = await build()
    const anyOrigin = await open.inject({ method: 'GET', url: ROUTES.health, headers: { origin: 'https://a.example' } })
    expect(anyOrigin.headers['access-control-allow-origin']).toBe('*')
    await open.close()

    const strict = await build({ corsOrigins: ['https://shop.example'] })
    const allowed = await strict.inject({ method: 'GET', url: ROUTES.modelVersion(TINY.name, 1), headers: { origin: 'https://shop.example' } })
    expect(allowed.headers['access-control-allow-origin']).toBe('https://shop.example')
    expect(allowed.headers['access-control-expose-headers']).toMatch(/ETag/)
    const denied = await strict.inject({ method: 'GET', url: ROUTES.health, headers: { origin: 'https://evil.example' } })
    expect(denied.headers['access-control-allow-origin']).toBeUndefined()
    const preflight = await strict.inject({
      method: 'OPTIONS',
      url: ROUTES.model(TINY.name),
      headers: { origin: 'https://shop.example', 'access-control-request-method': 'GET' },
    })
    expect(preflight.statusCode).toBe(204)
    expect(preflight.headers['access-control-allow-origin']).toBe('https://shop.example')
    const admin = await strict.inject({ method: 'GET', url: '/admin/rounds', headers: { origin: 'https://shop.example' } })
    expect(admin.statusCode).toBe(200)
    expect(admin.headers['access-control-allow-origin']).toBeUndefined()
  })

  test('the admin API needs the bearer token when one is configured', async () => {
    const token = 'a-long-enough-admin-token'
    const instance = await build({ adminToken: token })
    for (const authorization of [undefined, 'Bearer wrong-token-of-some-length', `Basic ${token}`, `Bearer ${token}x`, 'Bearer']) {
      const response = await instance.inject({ method: 'GET', url: '/admin/rounds', headers: authorization === undefined ? {} : { authorization } })
      expect(response.statusCode, authorization).toBe(401)
      expect(response.headers['www-authenticate']).toBe('Bearer realm="hearth-admin"')
      expectErrorBody(response.body, 'HEARTH_ERR_UNAUTHORIZED', 401)
    }
    const ok = await instance.inject({ method: 'GET', url: '/admin/rounds', headers: { authorization: `Bearer ${token}` } })
    expect(ok.statusCode).toBe(200)
    expect(ok.json()).toEqual({ rounds: [] })
    // The guard runs before validation: a bad id without a token is still 401.
    const guarded = await instance.inject({ method: 'GET', url: '/admin/rounds/0' })
    expect(guarded.statusCode).toBe(401)
  })

  test('the admin round list pages newest first and filters by model', async () => {
    const instance = await build({ models: [TINY, { name: 'other', mf: { buckets: 2, dim: 1 } }] })
    const { store } = instance.hearth
    const draft = (model: string) => ({
      model,
      baseVersion: 1,
      stage: 'done' as const,
      config: { minCohort: 1, maxCohort: 1, selectionTimeoutMs: 1, uploadTimeoutMs: 1, training: { epochs: 1, batchSize: 1, learningRate: 1, maxExamples: 1 }, strategy: 'plain-sum', optimizer: 'fedavg' },
      createdAt: 1,
      selectedAt: null,
      uploadDeadline: null,
      closedAt: 2,
      eligible: 0,
      participants: 0,
      uploadsAccepted: 0,
      dropped: 0,
      rejections: { HEARTH_ERR_LATE_UPLOAD: 2 },
      outcome: 'aborted' as const,
      reason: 'test',
      publishedVersion: null,
      privacy: null,
      secagg: null,
    })
    for (let i = 0; i < 5; i++) await store.createRound(draft(i % 2 === 0 ? TINY.name : 'other'))
    const page1 = (await instance.inject({ method: 'GET', url: '/admin/rounds?limit=2' })).json<{ rounds: { id: number }[]; next?: number }>()
    expect(page1.rounds.map((r) => r.id)).toEqual([5, 4])
    expect(page1.next).toBe(4)
    const page2 = (await instance.inject({ method: 'GET', url: `/admin/rounds?limit=2&before=${page1.next}` })).json<{ rounds: { id: number }[] }>()
    expect(page2.rounds.map((r) => r.id)).toEqual([3, 2])
    const tinyOnly = (await instance.inject({ method: 'GET', url: `/admin/rounds?model=${TINY.name}` })).json<{ rounds: { id: number; rejections: object }[]; next?: number }>()
    expect(tinyOnly.rounds.map((r) => r.id)).toEqual([5, 3, 1])
    expect(tinyOnly.next).toBeUndefined()
    expect(tinyOnly.rounds[0]!.rejections).toEqual({ HEARTH_ERR_LATE_UPLOAD: 2 })
    const one = await instance.inject({ method: 'GET', url: '/admin/rounds/3' })
    expect(one.json()).toMatchObject({ id: 3, model: TINY.name, outcome: 'aborted', reason: 'test' })
  })

  test('ifNoneMatchHits follows RFC 9110 §13.1.2', () => {
    expect(ifNoneMatchHits(undefined, '"a"')).toBe(false)
    expect(ifNoneMatchHits('"a"', '"a"')).toBe(true)
    expect(ifNoneMatchHits('W/"a"', '"a"')).toBe(true)
    expect(ifNoneMatchHits('"b", W/"a"', '"a"')).toBe(true)
    expect(ifNoneMatchHits('"a,b"', '"a"')).toBe(false)
    expect(ifNoneMatchHits('"ab"', '"a"')).toBe(false)
    expect(ifNoneMatchHits(' * ', '"a"')).toBe(true)
  })
})

describe('request ids', () => {
  test('every answer names its request id; a sane X-Request-Id from a proxy is kept, any other replaced', async () => {
    const instance = await build()
    const fresh = await instance.inject({ method: 'GET', url: '/health' })
    expect(fresh.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/)
    const other = await instance.inject({ method: 'GET', url: '/health' })
    expect(other.headers['x-request-id']).not.toBe(fresh.headers['x-request-id'])
    const kept = await instance.inject({ method: 'GET', url: '/health', headers: { 'x-request-id': 'lb-7f3a.1' } })
    expect(kept.headers['x-request-id']).toBe('lb-7f3a.1')
    const odd = await instance.inject({ method: 'GET', url: '/health', headers: { 'x-request-id': 'a b\u0000'.repeat(50) } })
    expect(odd.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/)
  })
})
