/**
 * The whole federated loop in real headless Chromium: a page embeds Hearth by script tag,
 * records events into the real IndexedDB, trains in the real module Worker without blocking the
 * main thread, and takes part in a round with two Node devices against a real aggregator on
 * 127.0.0.1. The published model is checked against previous + mean of the uploaded deltas,
 * with the page's delta captured from its WebSocket frames by the browser driver itself.
 */
import type { Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { WebSocket } from 'ws'
import type { Hearth } from '../../client/hearth.ts'
import { decodeFrame, FrameKind } from '../../protocol/frames.ts'
import { fetchWeights } from '../aggregator/helpers.ts'
import { embedPage, onUpdateSent, startHarness, waitForModel } from './harness.ts'
import type { BrowserHarness } from './harness.ts'

const APP_KEY = 'browser-test-key'
const MODEL = { name: 'default', mf: { buckets: 512, dim: 8 } }

describe('a federated round in real Chromium', () => {
  let harness: BrowserHarness
  let page: Page
  /** Every update frame any device sent, as the bytes that went on the wire. */
  const uploads: Float32Array[] = []

  beforeAll(async () => {
    harness = await startHarness({
      name: 'browser',
      appKey: APP_KEY,
      aggregator: {
        models: [MODEL],
        rounds: {
          minCohort: 3,
          maxCohort: 3,
          selectionTimeoutMs: 200,
          uploadTimeoutMs: 60_000,
          pauseMs: 600_000, // one round is all this test needs
          training: { epochs: 2, batchSize: 32, learningRate: 0.1, maxExamples: 400 },
        },
      },
      // A page that embeds Hearth with the three-line script tag.
      pages: (aggregatorUrl) => ({ '/': embedPage('Hearth test app', aggregatorUrl, APP_KEY) }),
    })
  })

  afterAll(() => harness?.close())

  test('the page records into IndexedDB and trains in the worker without blocking the main thread', async () => {
    page = await harness.browser.newPage()
    onUpdateSent(page, (frame) => uploads.push(frame.values))
    await page.goto(`${harness.site.url}/`)
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
    const nodeDevices: Hearth[] = []
    for (const seed of [11, 12]) {
      const device = await harness.nodeDevice({
        seed,
        events: 80,
        deps: {
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
        },
      })
      nodeDevices.push(device)
    }

    expect(await waitForModel(page, 2)).toBe(2)
    expect(uploads).toHaveLength(3)

    // Independently: version 2 must be version 1 plus the mean of the three deltas sent.
    const before = (await fetchWeights(harness.aggregator.url, MODEL.name, 1)).values
    const after = (await fetchWeights(harness.aggregator.url, MODEL.name, 2)).values
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
