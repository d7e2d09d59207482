/**
 * The whole federated loop in real headless Chromium: a page embeds Hearth by script tag,
 * records events into the real IndexedDB, trains in the real module Worker without blocking the
 * main thread, and takes part in a round with two Node devices against a real aggregator on
 * 127.0.0.1. The published model is checked against previous + mean of the uploaded deltas,
 * with the page's delta captured from its WebSocket frames by the browser driver itself.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest'
import { WebSocket } from 'ws'
import { startAggregator } from '../../aggregator/server.ts'
import type { AggregatorHandle } from '../../aggregator/server.ts'
import { createHearth } from '../../client/hearth.ts'
import type { Hearth } from '../../client/hearth.ts'
import { simulatedUser } from '../../demo/catalog.ts'
import { startStaticServer } from '../../demo/static-server.ts'
import type { StaticServer } from '../../demo/static-server.ts'
import { decodeFrame, FrameKind } from '../../protocol/frames.ts'
import { ROUTES } from '../../protocol/messages.ts'
import { createWorkerCore } from '../../worker/core.ts'
import { MemoryDeviceStore } from '../../worker/store/memory-store.ts'
import { launchChromium } from './chromium.ts'

const APP_KEY = 'browser-test-key'
const MODEL = { name: 'default', mf: { buckets: 512, dim: 8 } }

/** A page that embeds Hearth with the three-line script tag. */
function embedPage(aggregatorUrl: string): string {
  return `<!doctype html><meta charset="utf-8"><title>Hearth test app</title>
<script src="/hearth/hearth.iife.js" data-aggregator="${aggregatorUrl}" data-app-key="${APP_KEY}"></script>`
}

async function weightsOf(aggregator: AggregatorHandle, version: number): Promise<Float32Array> {
  const response = await fetch(new URL(ROUTES.modelVersion(MODEL.name, version), aggregator.url))
  expect(response.status).toBe(200)
  const frame = decodeFrame(new Uint8Array(await response.arrayBuffer()))
  expect(frame.kind).toBe(FrameKind.Weights)
  return frame.values as Float32Array
}

describe('a federated round in real Chromium', () => {
  let dataDir: string
  let aggregator: AggregatorHandle
  let site: StaticServer
  let browser: Browser
  let page: Page
  const nodeDevices: Hearth[] = []
  /** Every update frame any device sent, as the bytes that went on the wire. */
  const uploads: Float32Array[] = []

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'hearth-browser-'))
    aggregator = await startAggregator({
      port: 0,
      dataDir,
      appKeys: [APP_KEY],
      models: [MODEL],
      rounds: {
        minCohort: 3,
        maxCohort: 3,
        selectionTimeoutMs: 200,
        uploadTimeoutMs: 60_000,
        pauseMs: 600_000, // one round is all this test needs
        training: { epochs: 2, batchSize: 32, learningRate: 0.1, maxExamples: 400 },
      },
    })
    site = await startStaticServer([{ prefix: '/hearth/', dir: inject('distDir') }], '127.0.0.1', 0, (app) => {
      app.get('/', async (_request, reply) => reply.type('text/html').send(embedPage(aggregator.url)))
    })
    browser = await launchChromium()
  })

  afterAll(async () => {
    await Promise.allSettled(nodeDevices.map((device) => device.close()))
    await browser?.close()
    await site?.close()
    await aggregator?.close()
    await rm(dataDir, { recursive: true, force: true })
  })

  test('the page records into IndexedDB and trains in the worker without blocking the main thread', async () => {
    page = await browser.newPage()
    page.on('websocket', (socket) => {
      socket.on('framesent', ({ payload }) => {
        if (typeof payload === 'string') return
        const frame = decodeFrame(new Uint8Array(payload))
        if (frame.kind === FrameKind.Update) uploads.push(frame.values as Float32Array)
      })
    })
    await page.goto(`${site.url}/`)
    const info = await page.evaluate(async () => {
      const hearth = await window.Hearth.ready
      const kinds = ['view', 'click', 'like'] as const
      for (let i = 0; i < 600; i++) hearth.record({ item: `book-${i % 40}`, kind: kinds[i % 3] as (typeof kinds)[number] })
      const stats = await hearth.stats()
      // Watch the main thread while the worker trains: a blocked thread would stall the timer.
      let longestGap = 0
      let last = performance.now()
      const timer = setInterval(() => {
        const now = performance.now()
        longestGap = Math.max(longestGap, now - last)
        last = now
      }, 5)
      const started = performance.now()
      const result = await hearth.train({ epochs: 8, maxExamples: 3000 })
      const trainingMs = performance.now() - started
      clearInterval(timer)
      const databases = await indexedDB.databases()
      return { backend: hearth.backend, events: stats.events, result, trainingMs, longestGap, databases: databases.map((d) => d.name) }
    })
    expect(info.backend).toBe('wasm')
    expect(info.events).toBe(600)
    expect(info.databases).toContain('hearth:default')
    expect(info.result.examples).toBeGreaterThan(0)
    expect(Number.isFinite(info.result.loss)).toBe(true)
    // Training took long enough to matter, and the page kept ticking all along.
    expect(info.trainingMs).toBeGreaterThan(100)
    expect(info.longestGap).toBeLessThan(100)
  })

  test('with two Node devices it completes a round, publishes base + mean of the deltas, and loads it', async () => {
    for (const seed of [11, 12]) {
      const user = simulatedUser(seed)
      const device = await createHearth(
        { aggregatorUrl: aggregator.url, appKey: APP_KEY, backends: ['cpu'], dbName: `node-${seed}` },
        {
          worker: createWorkerCore({ openStore: async () => new MemoryDeviceStore(), seed }),
          createSocket: (url) => {
            const socket = new WebSocket(url)
            const send = socket.send.bind(socket)
            socket.send = ((data: Parameters<WebSocket['send']>[0], ...rest: unknown[]) => {
              if (data instanceof Uint8Array) {
                const frame = decodeFrame(data)
                if (frame.kind === FrameKind.Update) uploads.push(frame.values.slice() as Float32Array)
              }
              return (send as (...args: unknown[]) => void)(data, ...rest)
            }) as WebSocket['send']
            return socket
          },
          fetch: (input, init) => fetch(input, init),
        },
      )
      for (let i = 0; i < 80; i++) device.record(user.next())
      await device.flush()
      nodeDevices.push(device)
    }

    const version = await page.evaluate(
      () =>
        new Promise<number>((resolve) => {
          void window.Hearth.ready.then((hearth) => {
            if ((hearth.modelVersion ?? 0) >= 2) resolve(hearth.modelVersion as number)
            hearth.addEventListener('model', (event) => resolve(event.detail.version))
          })
        }),
    )
    expect(version).toBe(2)
    expect(uploads).toHaveLength(3)

    // Independently: version 2 must be version 1 plus the mean of the three deltas sent.
    const before = await weightsOf(aggregator, 1)
    const after = await weightsOf(aggregator, 2)
    let worst = 0
    let moved = 0
    for (let i = 0; i < before.length; i++) {
      const mean = ((uploads[0]?.[i] ?? NaN) + (uploads[1]?.[i] ?? NaN) + (uploads[2]?.[i] ?? NaN)) / 3
      const expected = (before[i] as number) + mean
      worst = Math.max(worst, Math.abs((after[i] as number) - expected))
      if (mean !== 0) moved++
    }
    expect(worst).toBeLessThan(1e-6)
    expect(moved).toBeGreaterThan(100) // the deltas were real training, not zeros

    // Every device, the page included, now holds version 2.
    for (const device of nodeDevices) {
      await expect.poll(() => device.modelVersion, { timeout: 10_000 }).toBe(2)
    }
  })

  test('a reload restores the events and the model version from IndexedDB', async () => {
    await page.reload()
    const restored = await page.evaluate(async () => {
      const hearth = await window.Hearth.ready
      const stats = await hearth.stats()
      return { events: stats.events, roundsJoined: stats.roundsJoined, version: hearth.modelVersion }
    })
    expect(restored).toEqual({ events: 600, roundsJoined: 1, version: 2 })
  })
})
