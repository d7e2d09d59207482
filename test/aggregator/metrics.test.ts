import { afterEach, describe, expect, test } from 'vitest'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../aggregator/app.ts'
import { MemoryStore } from '../../aggregator/store/memory-store.ts'
import { APP_KEY, eventually, knownDelta, listen, TestClient, TINY } from './helpers.ts'

let app: FastifyInstance | undefined

afterEach(async () => {
  await app?.close()
  app = undefined
})

/** The value of one sample line (`name{labels} value`) of a Prometheus text exposition. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

describe('GET /metrics', () => {
  test('exposes the counters, the connected-clients gauge and stage durations in Prometheus text', async () => {
    app = await buildApp({ store: new MemoryStore(), models: [TINY], appKeys: [APP_KEY] })
    const counters = app.hearth.counters
    counters.reject('HEARTH_ERR_MALFORMED_FRAME')
    counters.reject('HEARTH_ERR_MALFORMED_FRAME')
    counters.reject('HEARTH_ERR_LATE_UPLOAD')
    counters.increment('roundsPublished')
    counters.increment('roundsAborted')
    counters.increment('roundsAborted')
    counters.received(1000)
    counters.received(24)
    counters.connection(1)
    counters.connection(1)
    counters.connection(-1)
    counters.stage('selection', 200)
    counters.stage('upload', 3_000)

    const response = await app.inject({ method: 'GET', url: '/metrics' })
    expect(response.statusCode).toBe(200)
    expect(response.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/)
    const text = response.body
    expect(sample(text, 'hearth_rejected_messages_total{code="HEARTH_ERR_MALFORMED_FRAME"}')).toBe(2)
    expect(sample(text, 'hearth_rejected_messages_total{code="HEARTH_ERR_LATE_UPLOAD"}')).toBe(1)
    expect(sample(text, 'hearth_rounds_total{outcome="published"}')).toBe(1)
    expect(sample(text, 'hearth_rounds_total{outcome="aborted"}')).toBe(2)
    expect(sample(text, 'hearth_bytes_received_total')).toBe(1024)
    expect(sample(text, 'hearth_connected_clients')).toBe(1)
    expect(sample(text, 'hearth_round_stage_duration_seconds_count{stage="upload"}')).toBe(1)
    expect(sample(text, 'hearth_round_stage_duration_seconds_sum{stage="upload"}')).toBe(3)
    expect(sample(text, 'hearth_round_stage_duration_seconds_bucket{le="0.25",stage="selection"}')).toBe(1)
    expect(sample(text, 'hearth_round_stage_duration_seconds_bucket{le="2.5",stage="upload"}')).toBe(0)
    expect(text).toContain('hearth_process_resident_memory_bytes')

    // A second scrape reports the same monotonic totals, not twice them.
    const again = (await app.inject({ method: 'GET', url: '/metrics' })).body
    expect(sample(again, 'hearth_bytes_received_total')).toBe(1024)
    expect(sample(again, 'hearth_rejected_messages_total{code="HEARTH_ERR_MALFORMED_FRAME"}')).toBe(2)
  })

  test('needs the admin token when one is set', async () => {
    const token = 'metrics-token-0123456789'
    app = await buildApp({ store: new MemoryStore(), models: [TINY], appKeys: [APP_KEY], adminToken: token })
    expect((await app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(401)
    const ok = await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${token}` } })
    expect(ok.statusCode).toBe(200)
    expect(ok.body).toContain('hearth_connected_clients')
  })
})

describe('metrics from a real round', () => {
  test('count connections, bytes, stage durations and outcomes as clients take part', async () => {
    const running = await listen({ store: new MemoryStore(), rounds: { minCohort: 3, maxCohort: 3, selectionTimeoutMs: 20, uploadTimeoutMs: 10_000, pauseMs: 60_000 } })
    app = running.app
    const clients = await Promise.all([0, 1, 2].map(() => TestClient.checkedIn(running.wsUrl)))
    const plans = await Promise.all(clients.map((c) => c.next('round-plan')))
    clients.forEach((c, k) => c.upload(plans[0]!.roundId, knownDelta(k + 1)))
    await Promise.all(clients.map((c) => c.next('round-result')))
    const scrape = async (): Promise<string> => (await running.app.inject({ method: 'GET', url: '/metrics' })).body
    let text = await scrape()
    expect(sample(text, 'hearth_connected_clients')).toBe(3)
    expect(sample(text, 'hearth_rounds_total{outcome="published"}')).toBe(1)
    expect(sample(text, 'hearth_round_stage_duration_seconds_count{stage="selection"}')).toBe(1)
    expect(sample(text, 'hearth_round_stage_duration_seconds_count{stage="training"}')).toBe(1)
    // Three check-ins and three Update frames of 16 + 4·18 bytes each, at least.
    expect(sample(text, 'hearth_bytes_received_total')).toBeGreaterThan(3 * (16 + 4 * 18))
    clients[0]!.close()
    await eventually(async () => sample(await scrape(), 'hearth_connected_clients') === 2, 5_000, 'the closed connection to be counted')
    for (const client of clients.slice(1)) client.close()
    text = await scrape()
    expect(sample(text, 'hearth_sessions_checked_in_total')).toBe(3)
  })
})

describe('GET /ready', () => {
  test('answers ready once the app is built', async () => {
    app = await buildApp({ store: new MemoryStore(), models: [TINY], appKeys: [APP_KEY] })
    const ready = await app.inject({ method: 'GET', url: '/ready' })
    expect(ready.statusCode).toBe(200)
    expect(ready.headers['cache-control']).toBe('no-store')
    expect(ready.json()).toEqual({ status: 'ready' })
  })
})
