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
import type { Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { RoundRecord } from '../../aggregator/store/store.ts'
import type { Hearth } from '../../client/hearth.ts'
import { clipL2 } from '../../protocol/clip.ts'
import { decodeFrame, FrameKind } from '../../protocol/frames.ts'
import { inputLimit } from '../../protocol/secagg/quantize.ts'
import type { HearthWorkerApi } from '../../worker/api.ts'
import { createWorkerCore } from '../../worker/core.ts'
import { transferringApi } from '../../worker/expose.ts'
import { MemoryDeviceStore } from '../../worker/store/memory-store.ts'
import { fetchWeights } from '../aggregator/helpers.ts'
import { embedPage, startHarness, waitForModel } from './harness.ts'
import type { BrowserHarness } from './harness.ts'

const APP_KEY = 'browser-secagg-key'
const MODEL = { name: 'default', mf: { buckets: 512, dim: 8 } }
const CLIP_NORM = 1

declare global {
  interface Window {
    /** Deltas the page's Worker returned from `trainRound`, captured by the init script. */
    __deltas: { roundId: number; delta: number[] }[]
  }
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

describe('a secure-aggregation round in real Chromium', () => {
  let harness: BrowserHarness
  const nodeDevices: Hearth[] = []
  const nodeDeltas: Map<number, Float32Array>[] = []

  beforeAll(async () => {
    harness = await startHarness({
      name: 'secagg-browser',
      appKey: APP_KEY,
      aggregator: {
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
      },
      pages: (aggregatorUrl) => ({ '/': embedPage('Hearth secure round', aggregatorUrl, APP_KEY) }),
    })
  })

  afterAll(() => harness?.close())

  /** A page; with `leaveAfter`, it is closed as soon as it has sent a message of that type. */
  async function openPage(leaveAfter?: string): Promise<{ page: Page; sent: string[]; closed: () => Promise<void> | undefined }> {
    const context = await harness.browser.newContext()
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
    await page.goto(`${harness.site.url}/`)
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
    nodeDevices.push(await harness.nodeDevice({ seed, events: 120, options: { training: false }, deps: { worker } }))
    nodeDeltas.push(deltas)
  }

  test('one page closes after ShareKeys; the published model is base + the mean of the survivors', async () => {
    const survivor = await openPage()
    const leaver = await openPage('secagg/share-keys')
    await startNodeDevice(31)
    await startNodeDevice(32)

    expect(await waitForModel(survivor.page, 2)).toBe(2)
    expect(leaver.closed()).toBeDefined()
    await leaver.closed()

    // The leaver sent its keys and shares, never a masked input; the survivor masked in its Worker.
    expect(leaver.sent).toEqual(['checkin', 'secagg/advertise-keys', 'secagg/share-keys'])
    expect(survivor.sent).toEqual(['checkin', 'secagg/advertise-keys', 'secagg/share-keys', `frame-${FrameKind.MaskedUpdate}`, 'secagg/unmask-shares'])

    const roundsResponse = await fetch(new URL('/admin/rounds', harness.aggregator.url))
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

    const before = (await fetchWeights(harness.aggregator.url, MODEL.name, 1)).values
    const after = (await fetchWeights(harness.aggregator.url, MODEL.name, 2)).values
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
