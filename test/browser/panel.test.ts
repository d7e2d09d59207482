/**
 * `<hearth-preferences>` in real headless Chromium, on a page that embeds Hearth with the
 * three-line script tag (the panel attaches to `Hearth.ready` by itself): it shows what the
 * device really holds, its switches change behaviour when worked from the keyboard, export
 * downloads what was recorded, and delete leaves no record in any IndexedDB store and no Hearth
 * cache. Screenshots (light and dark, wide and 320 px) go to test-results/panel/.
 */
import { mkdir, readFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { Hearth } from '../../client/hearth.ts'
import type { HearthPreferencesElement } from '../../client/panel/preferences-element.ts'
import { DEFAULT_STRINGS } from '../../client/panel/strings.ts'
import type { HearthExport } from '../../protocol/personal-data.ts'
import { startHarness } from './harness.ts'
import type { BrowserHarness } from './harness.ts'

const APP_KEY = 'panel-test-key'
const MODEL = { name: 'default', mf: { buckets: 512, dim: 8 } }
const SHOTS = resolve('test-results/panel')
const DAY_MS = 86_400_000
/** For `expect.poll`: the machine may be busy (2 cores, a worker training). */
const WAIT = { timeout: 15_000 }

function embedPage(aggregatorUrl: string): string {
  return `<!doctype html><html lang="en"><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Hearth panel test</title><style>body { margin: 0 }</style>
<script src="/hearth/hearth.iife.js" data-aggregator="${aggregatorUrl}" data-app-key="${APP_KEY}"></script>
<main><hearth-preferences></hearth-preferences></main></html>`
}

/**
 * A page that starts Hearth itself, without federated learning and with a sensitive feature: the
 * panel attaches to the first `Hearth.init()` instance.
 */
function initPage(aggregatorUrl: string): string {
  const options = { aggregatorUrl, appKey: APP_KEY, federated: false, personalization: { sensitiveFeatures: { topic: 'health' } } }
  return `<!doctype html><html lang="en"><meta charset="utf-8"><title>Hearth panel test, init()</title>
<script src="/hearth/hearth.iife.js"></script>
<script>window.started = Hearth.init(${JSON.stringify(options)})</script>
<hearth-preferences></hearth-preferences></html>`
}

/** What the panel shows after a fresh refresh: its text and its `dt` → `dd` pairs. */
function readPanel(page: Page): Promise<{ text: string; terms: Record<string, string> }> {
  return page.evaluate(async () => {
    const panel = document.querySelector('hearth-preferences') as HearthPreferencesElement
    await panel.refresh()
    const root = panel.shadowRoot as ShadowRoot
    const terms = [...root.querySelectorAll('dt')].map((dt) => [dt.textContent ?? '', dt.nextElementSibling?.textContent ?? ''])
    return { text: root.textContent ?? '', terms: Object.fromEntries(terms) as Record<string, string> }
  })
}

function statusText(page: Page): Promise<string> {
  return page.locator('hearth-preferences [role="status"]').innerText()
}

describe('the preferences panel in real Chromium', () => {
  let harness: BrowserHarness
  let page: Page
  let sockets = 0

  beforeAll(async () => {
    await mkdir(SHOTS, { recursive: true })
    harness = await startHarness({
      name: 'panel',
      appKey: APP_KEY,
      aggregator: {
        models: [MODEL],
        rounds: {
          // No round until the two Node devices join the page.
          minCohort: 3,
          maxCohort: 3,
          selectionTimeoutMs: 200,
          uploadTimeoutMs: 60_000,
          pauseMs: 600_000,
          training: { epochs: 1, batchSize: 32, learningRate: 0.1, maxExamples: 200 },
        },
      },
      pages: (aggregatorUrl) => ({ '/': embedPage(aggregatorUrl), '/init': initPage(aggregatorUrl) }),
    })
    page = await harness.browser.newPage({ viewport: { width: 960, height: 900 } })
    page.on('websocket', () => sockets++)
  })

  afterAll(() => harness?.close())

  test('shows the stored counts, the model and a decision with the reason rank() gave', async () => {
    await page.goto(`${harness.site.url}/`)
    const { stats, reason } = await page.evaluate(async (dayMs) => {
      const hearth = await window.Hearth.ready
      const kinds = ['view', 'click', 'like', 'dismiss'] as const
      const now = Date.now()
      for (let i = 0; i < 40; i++) {
        // A quarter of the events are a month old, for the "older" count.
        hearth.record({ item: `book-${i % 12}`, kind: kinds[i % 4] as (typeof kinds)[number], at: i % 4 === 3 ? now - 30 * dayMs : now - i * 1000 })
      }
      await new Promise<void>((done) => {
        if (hearth.modelVersion !== null) done()
        else hearth.addEventListener('model', () => done())
      })
      await hearth.train({ epochs: 2 })
      const ranking = await hearth.rank(['book-1', 'book-5', 'book-30', 'book-31'], { surface: 'home' }, { exploration: { method: 'none' } })
      return { stats: await hearth.stats(), reason: ranking.items[0]?.reason.text ?? '' }
    }, DAY_MS)
    expect(stats.events).toBe(40)
    expect(reason).not.toBe('')

    const { text, terms } = await readPanel(page)
    expect(terms[DEFAULT_STRINGS.eventsTotal]).toBe(String(stats.events))
    for (const kind of ['view', 'click', 'like', 'dismiss'] as const) {
      expect(text).toContain(`${DEFAULT_STRINGS.eventKind(kind)}: ${stats.eventsByKind[kind]}`)
    }
    expect(text).toContain(`${DEFAULT_STRINGS.eventsRecent(7)}: 30`)
    expect(text).toContain(`${DEFAULT_STRINGS.eventsOlder}: 10`)
    expect(terms[DEFAULT_STRINGS.decisionsStored]).toBe(String(stats.decisions))
    expect(terms[DEFAULT_STRINGS.modelVersion]).toBe(String(stats.modelVersion))
    expect(terms[DEFAULT_STRINGS.lastTrained]).not.toBe(DEFAULT_STRINGS.never)
    expect(terms[DEFAULT_STRINGS.storageUsed]).not.toBe(DEFAULT_STRINGS.storageUnknown)
    expect(text).toContain(reason)

    await page.screenshot({ path: join(SHOTS, 'panel-wide-light.png'), fullPage: true })
    await page.emulateMedia({ colorScheme: 'dark' })
    await page.screenshot({ path: join(SHOTS, 'panel-wide-dark.png'), fullPage: true })
    await page.emulateMedia({ colorScheme: 'light' })
  })

  test('personalization off from the keyboard: rank() keeps the app order and nothing is recorded', async () => {
    await page.locator('hearth-preferences #personalization').focus()
    await page.keyboard.press('Space')
    await expect.poll(() => page.evaluate(async () => (await window.Hearth.ready).paused), WAIT).toBe(true)
    await expect.poll(() => statusText(page), WAIT).toBe(DEFAULT_STRINGS.saved)
    const paused = await page.evaluate(async () => {
      const hearth = await window.Hearth.ready
      hearth.record({ item: 'book-2', kind: 'click' })
      const ranking = await hearth.rank(['book-30', 'book-1', 'book-5'])
      return { items: ranking.items.map((i) => i.item), reasons: ranking.items.map((i) => i.reason.kind), events: (await hearth.stats()).events }
    })
    expect(paused).toEqual({ items: ['book-30', 'book-1', 'book-5'], reasons: ['app-order', 'app-order', 'app-order'], events: 40 })
    // The keyboard is still on the switch, and the way back on is the same key.
    expect(await page.evaluate(() => document.querySelector('hearth-preferences')?.shadowRoot?.activeElement?.id)).toBe('personalization')
    await page.keyboard.press('Space')
    await expect.poll(() => page.evaluate(async () => (await window.Hearth.ready).paused), WAIT).toBe(false)
  })

  test('federated learning off: the socket closes, and after a reload none is opened', async () => {
    await page.locator('hearth-preferences #federated').focus()
    await page.keyboard.press('Space')
    await expect.poll(() => page.evaluate(async () => (await window.Hearth.ready).connected), WAIT).toBe(false)
    sockets = 0
    await page.reload()
    const after = await page.evaluate(async () => {
      const hearth = await window.Hearth.ready
      await new Promise((done) => setTimeout(done, 1_000))
      return { federated: hearth.federated, connected: hearth.connected, events: (await hearth.stats()).events }
    })
    expect(after).toEqual({ federated: false, connected: false, events: 40 })
    expect(sockets).toBe(0)
    // Loaded (personalization shows on), and federated learning shows off.
    await expect.poll(() => page.locator('hearth-preferences #personalization').isChecked(), WAIT).toBe(true)
    expect(await page.locator('hearth-preferences #federated').isChecked()).toBe(false)

    await page.locator('hearth-preferences #federated').focus()
    await page.keyboard.press('Space')
    await expect.poll(() => page.evaluate(async () => (await window.Hearth.ready).connected), WAIT).toBe(true)
    expect(sockets).toBe(1)
  })

  test('a round the device joined is listed with what it sent', async () => {
    for (const seed of [21, 22]) await harness.nodeDevice({ seed, events: 60 })
    const rounds = await page.evaluate(async () => {
      const hearth = await window.Hearth.ready
      for (;;) {
        const joined = await hearth.rounds()
        if (joined.length > 0) return joined
        await new Promise((done) => setTimeout(done, 250))
      }
    })
    expect(rounds).toHaveLength(1)
    const round = rounds[0] as (typeof rounds)[number]
    const { text } = await readPanel(page)
    expect(text).toContain(`Round ${round.roundId}, `)
    expect(text).toContain(`a masked, clipped update of ${round.elements.toLocaleString('en-US')} numbers`)
  })

  test('at 320 px nothing scrolls sideways', async () => {
    await page.setViewportSize({ width: 320, height: 900 })
    const widths = await page.evaluate(() => {
      const panel = document.querySelector('hearth-preferences') as HTMLElement
      const inner = panel.shadowRoot?.querySelector('.panel') as HTMLElement
      return { panel: [panel.scrollWidth, panel.clientWidth], inner: [inner.scrollWidth, inner.clientWidth], page: [document.documentElement.scrollWidth, document.documentElement.clientWidth] }
    })
    expect(widths.panel[0]).toBeLessThanOrEqual(widths.panel[1] as number)
    expect(widths.inner[0]).toBeLessThanOrEqual(widths.inner[1] as number)
    expect(widths.page[0]).toBeLessThanOrEqual(widths.page[1] as number)
    await page.screenshot({ path: join(SHOTS, 'panel-narrow-light.png'), fullPage: true })
    await page.emulateMedia({ colorScheme: 'dark' })
    await page.screenshot({ path: join(SHOTS, 'panel-narrow-dark.png'), fullPage: true })
    await page.emulateMedia({ colorScheme: 'light' })
    await page.setViewportSize({ width: 960, height: 900 })
  })

  test('export downloads a JSON file with the recorded events', async () => {
    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('hearth-preferences button', { hasText: DEFAULT_STRINGS.exportButton }).click()])
    expect(download.suggestedFilename()).toMatch(/^hearth-data-\d{4}-\d{2}-\d{2}\.json$/)
    const data = JSON.parse(await readFile(await download.path(), 'utf8')) as HearthExport
    const stats = await page.evaluate(async () => (await window.Hearth.ready).stats())
    expect(data.format).toBe('hearth-export')
    expect(data.events).toHaveLength(stats.events)
    expect(data.events.filter((e) => e.kind === 'click')).toHaveLength(stats.eventsByKind.click)
    expect(data.events.map((e) => e.item)).toContain('book-1')
    expect(data.decisions.length).toBe(stats.decisions)
    expect(data.rounds).toHaveLength(1)
    await expect.poll(() => statusText(page), WAIT).toBe(DEFAULT_STRINGS.exported)
  })

  test('delete, after a confirmation, shows the empty state and leaves no record in IndexedDB and no cache', async () => {
    await page.locator('hearth-preferences button', { hasText: DEFAULT_STRINGS.deleteButton }).click()
    await expect.poll(() => page.locator('hearth-preferences [role="group"]').isVisible(), WAIT).toBe(true)
    // Nothing is deleted before the user confirms; the safe choice has the focus.
    expect(await page.evaluate(async () => (await (await window.Hearth.ready).stats()).events)).toBe(40)
    expect(await page.evaluate(() => document.querySelector('hearth-preferences')?.shadowRoot?.activeElement?.textContent)).toBe(DEFAULT_STRINGS.deleteCancel)
    await page.locator('hearth-preferences button', { hasText: DEFAULT_STRINGS.deleteConfirmButton }).click()
    await expect.poll(() => statusText(page), WAIT).toBe(DEFAULT_STRINGS.deleted)
    expect(await page.locator('hearth-preferences .empty').isVisible()).toBe(true)
    expect(await page.locator('hearth-preferences .empty').innerText()).toContain(DEFAULT_STRINGS.emptyText)

    const left = await page.evaluate(async () => {
      const records: Record<string, number> = {}
      for (const { name } of await indexedDB.databases()) {
        if (name === undefined) continue
        const db = await new Promise<IDBDatabase>((done, fail) => {
          const request = indexedDB.open(name)
          request.onsuccess = () => done(request.result)
          request.onerror = () => fail(request.error)
        })
        for (const store of db.objectStoreNames) {
          records[`${name}/${store}`] = await new Promise<number>((done, fail) => {
            const request = db.transaction(store).objectStore(store).count()
            request.onsuccess = () => done(request.result)
            request.onerror = () => fail(request.error)
          })
        }
        db.close()
      }
      return { records, caches: (await caches.keys()).filter((key) => key.toLowerCase().includes('hearth')) }
    })
    expect(Object.keys(left.records).length).toBeGreaterThan(0)
    expect(Object.values(left.records).every((count) => count === 0), JSON.stringify(left.records)).toBe(true)
    expect(left.caches).toEqual([])
    await page.screenshot({ path: join(SHOTS, 'panel-deleted.png'), fullPage: true })
  })

  test('with init(): consent switches per category, federated learning unavailable, strings overridden', async () => {
    // A fresh context: its own IndexedDB.
    const other = await harness.browser.newPage()
    try {
      await other.goto(`${harness.site.url}/init`)
      const consent = other.locator('hearth-preferences #consent-0')
      // The worker starts first (tfjs and wasm): give it time.
      await expect.poll(() => consent.isVisible(), { timeout: 30_000 }).toBe(true)
      expect(await other.locator('hearth-preferences label[for="consent-0"]').innerText()).toBe(DEFAULT_STRINGS.consentLabel('health'))
      expect(await consent.isChecked()).toBe(false)
      expect(await other.locator('hearth-preferences #federated').isDisabled()).toBe(true)
      expect(await other.locator('hearth-preferences #federated-hint').innerText()).toBe(DEFAULT_STRINGS.federatedUnavailable)

      await consent.focus()
      await other.keyboard.press('Space')
      await expect
        .poll(() => other.evaluate(async () => (await (window as unknown as { started: Promise<Hearth> }).started.then((hearth) => hearth.settings())).consent), WAIT)
        .toEqual({ health: true })

      await other.evaluate(() => {
        const panel = document.querySelector('hearth-preferences') as HearthPreferencesElement
        panel.strings = { title: 'Vos données sur cet appareil', deleteButton: 'Supprimer mes données' }
      })
      await expect.poll(() => other.locator('hearth-preferences h2').innerText(), WAIT).toBe('Vos données sur cet appareil')
      expect(await other.locator('hearth-preferences button', { hasText: 'Supprimer mes données' }).count()).toBe(1)
      expect(await other.locator('hearth-preferences #consent-0').isChecked()).toBe(true)
    } finally {
      await other.close()
    }
  })
})
