/**
 * A secure-aggregation round in real headless Chromium: two pages (each in its own browser
 * context, so its own IndexedDB and Worker) embed Hearth by script tag, two Node devices run the
 * worker core, and the aggregator runs secure aggregation. The masking happens in the pages'
 * module Workers. One page is closed right after it sent its ShareKeys message, so its pairwise
 * masks must be recovered from its neighbours' shares; the published model must still be
 * base + the mean of the survivors' clipped deltas.
 *
 * The surviving page's delta is captured as it comes out of its Worker (a listener added to the
 * page's `Worker` before Hearth starts), the Node devices' from their worker core: both before
 * anything is clipped, quantized or masked.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest'
import { WebSocket } from 'ws'
import { startAggregator } from '../../aggregator/server.ts'
import type { AggregatorHandle } from '../../aggregator/server.ts'
import type { RoundRecord } from '../../aggregator/store/store.ts'
import { createHearth } from '../../client/hearth.ts'
import type { Hearth } from '../../client/hearth.ts'
import { simulatedUser } from '../../demo/catalog.ts'
import { startStaticServer } from '../../demo/static-server.ts'
import type { StaticServer } from '../../demo/static-server.ts'
import { clipL2 } from '../../protocol/clip.ts'
import { decodeFrame, FrameKind } from '../../protocol/frames.ts'
import { ROUTES } from '../../protocol/messages.ts'
import { inputLimit } from '../../protocol/secagg/quantize.ts'
import type { HearthWorkerApi } from '../../worker/api.ts'
import { createWorkerCore } from '../../worker/core.ts'
import { transferringApi } from '../../worker/expose.ts'
import { MemoryDeviceStore } from '../../worker/store/memory-store.ts'
import { launchChromium } from './chromium.ts'

const APP_KEY = 'browser-secagg-key'
const MODEL = { name: 'default', mf: { buckets: 512, dim: 8 } }
const CLIP_NORM = 1

declare global {
  interface Window {
    /** Deltas the page's Worker returned from `trainRound`, captured by the init script. */
    __deltas: { roundId: number; delta: number[] }[]
  }
}

function embedPage(aggregatorUrl: string): string {
  return `<!doctype html><meta charset="utf-8"><title>Hearth secure round</title>
<script src="/hearth/hearth.iife.js" data-aggregator="${aggregatorUrl}" data-app-key="${APP_KEY}"></script>`
}

/** Runs in the page before Hearth: copies every `trainRound` result leaving the Worker. */
function captureDeltas(): void {
  window.__deltas = []
  const Original = window.Worker
  window.Worker = class extends Original {
    constructor(url: string | URL, options?: WorkerOptions) {
      super(url, options)
      this.addEventListener('message', (event: MessageEvent) => {
        const value = (event.data as { value?: { roundId?: unknown; delta?: unknown } } | null)?.value
        if (value?.delta instanceof Float32Array && typeof value.roundId === 'number') {
          window.__deltas.push({ roundId: value.roundId, delta: Array.from(value.delta) })
        }
      })
    }
  }
}

async function weightsOf(aggregator: AggregatorHandle, version: number): Promise<Float32Array> {
  const response = await fetch(new URL(ROUTES.modelVersion(MODEL.name, version), aggregator.url))
  expect(response.status).toBe(200)
  return decodeFrame(new Uint8Array(await response.arrayBuffer())).values as Float32Array
}

describe('a secure-aggregation round in real Chromium', () => {
  let dataDir: string
  let aggregator: AggregatorHandle
  let site: StaticServer
  let browser: Browser
  const nodeDevices: Hearth[] = []
  const nodeDeltas: Map<number, Float32Array>[] = []

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'hearth-secagg-browser-'))
    aggregator = await startAggregator({
      port: 0,
      dataDir,
      appKeys: [APP_KEY],
      models: [MODEL],
      rounds: {
        minCohort: 3,
        maxCohort: 4,
        selectionTimeoutMs: 60_000, // selection closes when the fourth device checks in
        uploadTimeoutMs: 60_000,
        pauseMs: 600_000,
        training: { epochs: 4, batchSize: 32, learningRate: 0.1, maxExamples: 1000 },
        aggregation: 'secagg',
        secagg: { variant: 'secagg', clipNorm: CLIP_NORM, stageTimeoutsMs: { 'advertise-keys': 20_000, 'share-keys': 20_000, unmasking: 20_000 } },
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

  /** A page; with `leaveAfter`, it is closed as soon as it has sent a message of that type. */
  async function openPage(leaveAfter?: string): Promise<{ page: Page; sent: string[]; closed: () => Promise<void> | undefined }> {
    const context = await browser.newContext()
    await context.addInitScript(captureDeltas)
    const page = await context.newPage()
    const sent: string[] = []
    let closing: Promise<void> | undefined
    const typeOf = (payload: string | Buffer): string =>
      typeof payload === 'string' ? (JSON.parse(payload) as { type: string }).type : `frame-${decodeFrame(new Uint8Array(payload)).kind}`
    if (leaveAfter === undefined) {
      page.on('websocket', (socket) => socket.on('framesent', ({ payload }) => void sent.push(typeOf(payload))))
    } else {
      // The leaver's socket runs through the test: once its `leaveAfter` message is forwarded the
      // connection to the aggregator is cut at once and the page closed, so nothing it computes
      // later (a masked input already under way) can reach the aggregator, however fast it is.
      await page.routeWebSocket(/\/v1\/rounds\/socket/, (ws) => {
        const server = ws.connectToServer()
        let cut = false
        server.onMessage((message) => ws.send(message))
        ws.onMessage((message) => {
          if (cut) return
          server.send(message)
          const type = typeOf(message)
          sent.push(type)
          if (type !== leaveAfter) return
          cut = true
          void server.close()
          closing ??= page.close()
        })
      })
    }
    await page.goto(`${site.url}/`)
    await page.evaluate(async () => {
      const hearth = await window.Hearth.ready
      const kinds = ['view', 'click', 'like'] as const
      for (let i = 0; i < 600; i++) hearth.record({ item: `book-${i % 40}`, kind: kinds[i % 3] as (typeof kinds)[number] })
      await hearth.flush()
    })
    return { page, sent, closed: () => closing }
  }

  async function startNodeDevice(seed: number): Promise<void> {
    const deltas = new Map<number, Float32Array>()
    const core = createWorkerCore({ openStore: async () => new MemoryDeviceStore(), seed })
    const worker: HearthWorkerApi = {
      ...transferringApi(core),
      trainRound: async (request) => {
        const result = await core.trainRound(request)
        deltas.set(result.roundId, result.delta.slice())
        return result
      },
    }
    const device = await createHearth(
      { aggregatorUrl: aggregator.url, appKey: APP_KEY, backends: ['cpu'], dbName: `node-${seed}`, training: false },
      { worker, createSocket: (url) => new WebSocket(url), fetch: (input, init) => fetch(input, init) },
    )
    const user = simulatedUser(seed)
    for (let i = 0; i < 120; i++) device.record(user.next())
    await device.flush()
    nodeDevices.push(device)
    nodeDeltas.push(deltas)
  }

  test('one page closes after ShareKeys; the published model is base + the mean of the survivors', async () => {
    const survivor = await openPage()
    const leaver = await openPage('secagg/share-keys')
    await startNodeDevice(31)
    await startNodeDevice(32)

    const version = await survivor.page.evaluate(
      () =>
        new Promise<number>((resolve) => {
          void window.Hearth.ready.then((hearth) => {
            if ((hearth.modelVersion ?? 0) >= 2) resolve(hearth.modelVersion as number)
            hearth.addEventListener('model', (event) => resolve(event.detail.version))
          })
        }),
    )
    expect(version).toBe(2)
    expect(leaver.closed()).toBeDefined()
    await leaver.closed()

    // The leaver sent its keys and shares, never a masked input; the survivor masked in its Worker.
    expect(leaver.sent).toEqual(['checkin', 'secagg/advertise-keys', 'secagg/share-keys'])
    expect(survivor.sent).toEqual(['checkin', 'secagg/advertise-keys', 'secagg/share-keys', `frame-${FrameKind.MaskedUpdate}`, 'secagg/unmask-shares'])

    const roundsResponse = await fetch(new URL('/admin/rounds', aggregator.url))
    const { rounds } = (await roundsResponse.json()) as { rounds: RoundRecord[] }
    const round = rounds.find((r) => r.publishedVersion === 2) as RoundRecord
    expect(round.secagg?.groups).toEqual([
      expect.objectContaining({ clients: 4, advertised: 4, shared: 4, masked: 3, unmasked: 3, survivors: 3, contributed: true }),
    ])

    const captured = await survivor.page.evaluate(() => window.__deltas)
    const pageDelta = captured.find((d) => d.roundId === round.id)
    expect(pageDelta).toBeDefined()
    const survivors = [Float32Array.from(pageDelta?.delta ?? []), ...nodeDeltas.map((d) => d.get(round.id) as Float32Array)]
    const clipped = survivors.map((delta) => clipL2(delta, CLIP_NORM).values)

    const before = await weightsOf(aggregator, 1)
    const after = await weightsOf(aggregator, 2)
    const step = (2 * CLIP_NORM) / inputLimit(32, 4)
    let moved = 0
    for (let i = 0; i < before.length; i++) {
      let sum = 0
      for (const delta of clipped) sum += delta[i] as number
      const expected = (before[i] as number) + sum / clipped.length
      expect(Math.abs((after[i] as number) - expected), `element ${i}`).toBeLessThanOrEqual(step + 2 ** -23 * Math.max(1, Math.abs(expected)))
      if (sum !== 0) moved++
    }
    expect(moved).toBeGreaterThan(100)
    for (const device of nodeDevices) await expect.poll(() => device.modelVersion, { timeout: 10_000 }).toBe(2)
  })
})
