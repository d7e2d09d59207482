/**
 * Offline use in real headless Chromium: on the first visit Hearth's service worker installs,
 * claims the page and keeps the library, worker, wasm files, the current model and (opted in
 * here) the page itself; with the network cut (`context.setOffline`) a reload starts Hearth from
 * those caches, ranks with reasons and records. A round running when the network goes is
 * skipped, never uploaded late, and the next one is joined. `deleteData()` leaves no Hearth
 * cache nor service worker; an app's own worker is never replaced nor unregistered; with the
 * opt-out no worker is registered.
 */
import type { BrowserContext, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { RoundEventDetail } from '../../client/events.ts'
import type { Hearth } from '../../client/hearth.ts'
import type { RoundRecord } from '../../aggregator/store/store.ts'
import { embedPage, onUpdateSent, startHarness } from './harness.ts'
import type { BrowserHarness } from './harness.ts'

const APP_KEY = 'offline-test-key'
const ADMIN_TOKEN = 'offline-test-admin'
const MODEL = { name: 'default', mf: { buckets: 512, dim: 8 } }
/** The machine may be busy (2 cores, workers training): generous waits. */
const WAIT = { timeout: 30_000 }
/** The round socket's backoff grows to 30 s; reconnecting may take that long. */
const RECONNECT = { timeout: 45_000 }

/** An app with a service worker of its own at `/`, which starts Hearth once that worker is active. */
function appWithWorkerPage(aggregatorUrl: string): string {
  const options = { aggregatorUrl, appKey: APP_KEY }
  return `<!doctype html><meta charset="utf-8"><title>Hearth offline test, the app's worker</title>
<script src="/hearth/hearth.iife.js"></script>
<script>
window.reported = navigator.serviceWorker.register('/app-sw.js', { scope: '/' })
  .then(() => navigator.serviceWorker.ready)
  .then(() => Hearth.init(${JSON.stringify(options)}))
  .then((hearth) => new Promise((resolve) => hearth.addEventListener('error', (event) => resolve({ hearth, code: event.detail.error.code }))))
</script>`
}

/** What Hearth left in Cache Storage and the service-worker registrations of the page's origin. */
function leftovers(target: Page): Promise<{ caches: Record<string, string[]>; registrations: string[]; controlled: boolean }> {
  return target.evaluate(async () => {
    const found: Record<string, string[]> = {}
    for (const name of await caches.keys()) {
      if (!name.startsWith('hearth-')) continue
      const cache = await caches.open(name)
      found[name] = (await cache.keys()).map((request) => new URL(request.url).pathname)
    }
    const registrations = await navigator.serviceWorker.getRegistrations()
    return { caches: found, registrations: registrations.map((r) => r.scope), controlled: navigator.serviceWorker.controller !== null }
  })
}

describe('Hearth offline in real Chromium', () => {
  let harness: BrowserHarness
  let context: BrowserContext
  let tab: Page
  /** Round ids of the Update frames the page sent, as they went on the wire. */
  const pageUploads: number[] = []

  beforeAll(async () => {
    harness = await startHarness({
      name: 'offline',
      appKey: APP_KEY,
      aggregator: {
        adminToken: ADMIN_TOKEN,
        models: [MODEL],
        rounds: {
          // No round until a Node device joins the page.
          minCohort: 2,
          maxCohort: 2,
          selectionTimeoutMs: 200,
          uploadTimeoutMs: 90_000,
          pauseMs: 2_000,
          // Long enough local training that the network can be cut while the page trains.
          training: { epochs: 20, batchSize: 16, learningRate: 0.05, maxExamples: 3_000 },
        },
      },
      pages: (aggregatorUrl) => ({
        '/': embedPage('Hearth offline test', aggregatorUrl, APP_KEY, 'data-cache-pages'),
        '/opt-out': embedPage('Hearth offline test', aggregatorUrl, APP_KEY, 'data-service-worker="off"'),
        '/app-sw.js': { type: 'text/javascript', body: "// the app's own service worker" },
        '/app-with-worker': appWithWorkerPage(aggregatorUrl),
      }),
    })
    context = await harness.browser.newContext()
    tab = await context.newPage()
    onUpdateSent(tab, (frame) => pageUploads.push(frame.id))
  })

  afterAll(() => harness?.close())

  async function adminRound(id: number): Promise<RoundRecord> {
    const response = await fetch(new URL(`/admin/rounds/${id}`, harness.aggregator.url), { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })
    expect(response.status).toBe(200)
    return (await response.json()) as RoundRecord
  }

  test('first visit: the service worker claims the page and caches the library, worker, wasm, model and page', async () => {
    await tab.goto(`${harness.site.url}/`)
    const state = await tab.evaluate(async () => {
      const hearth = await window.Hearth.ready
      await new Promise<void>((done) => {
        if (hearth.modelVersion !== null) done()
        else hearth.addEventListener('model', () => done())
      })
      const kinds = ['view', 'click', 'like'] as const
      for (let i = 0; i < 600; i++) hearth.record({ item: `book-${i % 40}`, kind: kinds[i % 3] as (typeof kinds)[number] })
      await hearth.train({ epochs: 2 })
      await navigator.serviceWorker.ready
      return { version: hearth.modelVersion, connected: hearth.connected }
    })
    expect(state).toEqual({ version: 1, connected: true })
    await expect.poll(() => tab.evaluate(() => navigator.serviceWorker.controller !== null), WAIT).toBe(true)

    // The first visit's requests, made before the worker existed, are made again through it.
    await expect
      .poll(async () => {
        const { caches } = await leftovers(tab)
        const precache = Object.entries(caches).find(([name]) => name.startsWith('hearth-precache'))?.[1] ?? []
        return {
          precache: ['/hearth/hearth.iife.js', '/hearth/hearth.worker.js', '/hearth/wasm/tfjs-backend-wasm-simd.wasm'].every((path) => precache.includes(path)),
          models: (caches['hearth-models'] ?? []).sort(),
          pages: (caches['hearth-pages'] ?? []).includes('/'),
        }
      }, WAIT)
      .toEqual({ precache: true, models: ['/v1/models/default', '/v1/models/default/versions/1'], pages: true })
  })

  test('offline: a reload starts Hearth from the caches, ranks with reasons and records', async () => {
    await context.setOffline(true)
    await tab.reload()
    const offline = await tab.evaluate(async () => {
      const hearth = await window.Hearth.ready
      const ranking = await hearth.rank(['book-1', 'book-7', 'book-99'], { surface: 'home' }, { exploration: { method: 'none' } })
      const before = (await hearth.stats()).events
      hearth.record({ item: 'book-7', kind: 'click' })
      await hearth.flush()
      return {
        online: navigator.onLine,
        version: hearth.modelVersion,
        connected: hearth.connected,
        items: ranking.items.map((item) => item.item).sort(),
        reasons: ranking.items.every((item) => item.reason.text.length > 0),
        recorded: (await hearth.stats()).events - before,
      }
    })
    expect(offline).toEqual({ online: false, version: 1, connected: false, items: ['book-1', 'book-7', 'book-99'], reasons: true, recorded: 1 })
  })

  test('a round running when the network goes is skipped, never uploaded late, and the next round is joined', async () => {
    await context.setOffline(false)
    await expect.poll(() => tab.evaluate(async () => (await window.Hearth.ready).connected), RECONNECT).toBe(true)
    await tab.evaluate(async () => {
      const hearth = await window.Hearth.ready
      const log: RoundEventDetail[] = ((window as unknown as { rounds: RoundEventDetail[] }).rounds = [])
      hearth.addEventListener('round', (event) => log.push(event.detail))
    })

    // The page is in round 1 once it asks for the round's base weights: hold that download,
    // cut the network, and only then let the download fail (the worker serves its cached copy).
    let release = (): void => undefined
    const held = new Promise<void>((resolve) => (release = resolve))
    const requested = new Promise<void>((resolve) => {
      void context.route('**/v1/models/default/versions/1', async (route) => {
        resolve()
        await held
        await route.abort('internetdisconnected')
      })
    })
    const device = await harness.nodeDevice({ seed: 31, events: 80 })

    await requested
    await context.setOffline(true)
    await expect.poll(() => tab.evaluate(() => navigator.onLine), WAIT).toBe(false)
    release()
    await context.unrouteAll({ behavior: 'wait' })
    const missed = (await tab.evaluate(() => (window as unknown as { rounds: RoundEventDetail[] }).rounds))[0]?.roundId as number
    const rounds = (): Promise<RoundEventDetail[]> => tab.evaluate(() => (window as unknown as { rounds: RoundEventDetail[] }).rounds)
    await expect.poll(async () => (await rounds()).find((d) => d.roundId === missed && d.status !== 'training')?.status, WAIT).toBe('skipped')
    await expect.poll(async () => (await adminRound(missed)).outcome, WAIT).toBe('aborted')

    await context.setOffline(false)
    await expect.poll(() => tab.evaluate(async () => (await window.Hearth.ready).connected), RECONNECT).toBe(true)
    await expect.poll(async () => (await rounds()).find((d) => d.roundId > missed && d.status === 'published')?.roundId, { timeout: 120_000 }).toBeGreaterThan(missed)
    const next = (await rounds()).find((d) => d.roundId > missed && d.status === 'published')?.roundId as number

    const [record, joined] = await Promise.all([adminRound(missed), adminRound(next)])
    // The Node device's upload may count, or be refused as late once the round closed; the page's never went.
    expect(record.participants).toBe(2)
    expect(record.uploadsAccepted).toBeLessThanOrEqual(1)
    expect(joined).toMatchObject({ outcome: 'published', participants: 2, uploadsAccepted: 2 })
    // Rounds go on every 2 s; what counts is what the page sent up to the one it joined.
    expect(pageUploads.filter((id) => id <= next)).toEqual([next])
    expect((await rounds()).filter((d) => d.roundId === missed).map((d) => d.status)).toEqual(['training', 'skipped'])
    await device.close() // no more rounds
  })

  test('deleteData() removes Hearth caches and unregisters its service worker', async () => {
    expect(Object.keys((await leftovers(tab)).caches).length).toBeGreaterThan(0)
    await tab.evaluate(async () => (await window.Hearth.ready).deleteData())
    const left = await leftovers(tab)
    expect(left.caches).toEqual({})
    expect(left.registrations).toEqual([])
  })

  test("an app's own service worker at the same scope is neither replaced nor unregistered", async () => {
    const fresh = await harness.browser.newContext()
    try {
      const other = await fresh.newPage()
      await other.goto(`${harness.site.url}/app-with-worker`)
      const outcome = await other.evaluate(async () => {
        const { hearth, code } = await (window as unknown as { reported: Promise<{ hearth: Hearth; code: string }> }).reported
        await hearth.deleteData()
        const registrations = await navigator.serviceWorker.getRegistrations()
        return { code, scripts: registrations.map((r) => new URL(r.active?.scriptURL ?? '').pathname) }
      })
      expect(outcome).toEqual({ code: 'HEARTH_ERR_SERVICE_WORKER', scripts: ['/app-sw.js'] })
    } finally {
      await fresh.close()
    }
  })

  test('with data-service-worker="off" no service worker is registered', async () => {
    const fresh = await harness.browser.newContext()
    try {
      const other = await fresh.newPage()
      await other.goto(`${harness.site.url}/opt-out`)
      await other.evaluate(async () => {
        const hearth = await window.Hearth.ready
        await new Promise((done) => setTimeout(done, 1_500))
        return hearth.modelVersion
      })
      expect(await leftovers(other)).toEqual({ caches: {}, registrations: [], controlled: false })
    } finally {
      await fresh.close()
    }
  })
})
