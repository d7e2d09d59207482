/**
 * Personalization in a real page (issue 4): the script-tag build in headless Chromium over the
 * real IndexedDB and module Worker. A device that held schema version 1 is upgraded without
 * losing its events; the page records, ranks with reasons (built on the page from the columns
 * the worker transfers) and logs the decision; pausing keeps
 * the app's order and stores nothing; export returns the events, and delete leaves every
 * IndexedDB store empty, as the page itself sees it.
 */
import type { Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { Hearth } from '../../client/hearth.ts'
import { DB_VERSION } from '../../worker/store/idb-schema.ts'
import { startHarness } from './harness.ts'
import type { BrowserHarness } from './harness.ts'

const APP_KEY = 'personalization-test-key'
const DB_NAME = 'hearth:default'
const PAGE = '<!doctype html><meta charset="utf-8"><title>Hearth personalization test</title><script src="/hearth/hearth.iife.js"></script>'

/** The page's Hearth instance, kept on `window` between `page.evaluate` calls. */
type TestWindow = Window & { hearth: Hearth }

/** Row counts of every object store of `name`, and its version, read by the page itself. */
async function inspectDb(page: Page, name: string): Promise<{ version: number; counts: Record<string, number> }> {
  return page.evaluate(async (dbName) => {
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const request = indexedDB.open(dbName)
      request.onsuccess = () => resolve(request.result)
      request.onerror = () => reject(request.error)
    })
    const counts: Record<string, number> = {}
    for (const store of Array.from(db.objectStoreNames)) {
      counts[store] = await new Promise<number>((resolve, reject) => {
        const request = db.transaction(store).objectStore(store).count()
        request.onsuccess = () => resolve(request.result)
        request.onerror = () => reject(request.error)
      })
    }
    const version = db.version
    db.close()
    return { version, counts }
  }, name)
}

describe('personalization in real Chromium', () => {
  let harness: BrowserHarness
  let page: Page

  beforeAll(async () => {
    harness = await startHarness({
      name: 'personalization',
      appKey: APP_KEY,
      aggregator: { models: [{ name: 'default', mf: { buckets: 512, dim: 8 } }] },
      pages: () => ({ '/': PAGE }),
    })
    page = await harness.browser.newPage()
    await page.goto(`${harness.site.url}/`)
  })

  afterAll(async () => {
    await page?.evaluate(() => (window as unknown as TestWindow).hearth?.close())
    await harness?.close()
  })

  test('a schema version 1 database is upgraded to the current version and keeps its events', async () => {
    // The version 1 schema (worker/store/idb-schema.ts), written as a device of that time did.
    await page.evaluate(async (dbName) => {
      await new Promise<void>((resolve, reject) => {
        const request = indexedDB.open(dbName, 1)
        request.onupgradeneeded = () => {
          const db = request.result
          const events = db.createObjectStore('events', { autoIncrement: true })
          events.createIndex('by-at', 'at')
          events.createIndex('by-kind', 'kind')
          db.createObjectStore('models', { keyPath: 'slot' })
          db.createObjectStore('meta')
          db.createObjectStore('rounds', { keyPath: ['model', 'roundId'] })
          for (let i = 0; i < 5; i++) events.add({ item: `old-${i}`, kind: 'like', at: Date.now() - 1000 + i })
        }
        request.onsuccess = () => {
          request.result.close()
          resolve()
        }
        request.onerror = () => reject(request.error)
      })
    }, DB_NAME)
    expect(await inspectDb(page, DB_NAME)).toEqual({ version: 1, counts: { events: 5, meta: 0, models: 0, rounds: 0 } })

    const stats = await page.evaluate(
      async ({ aggregatorUrl, appKey }) => {
        const hearth = await window.Hearth.init({ aggregatorUrl, appKey, federated: false, training: false, serviceWorker: false })
        ;(window as unknown as TestWindow).hearth = hearth
        return hearth.stats()
      },
      { aggregatorUrl: harness.aggregator.url, appKey: APP_KEY },
    )
    expect(stats.events).toBe(5)
    const upgraded = await inspectDb(page, DB_NAME)
    expect(DB_VERSION).toBeGreaterThanOrEqual(2)
    expect(upgraded.version).toBe(DB_VERSION)
    // Version 2 added the decision log and the settings.
    expect(upgraded.counts).toMatchObject({ events: 5, decisions: 0, settings: expect.any(Number) })
  })

  test('records events, ranks with reasons and logs the decision', async () => {
    const result = await page.evaluate(async () => {
      const hearth = (window as unknown as TestWindow).hearth
      const kinds = ['view', 'click', 'like', 'purchase'] as const
      for (let i = 0; i < 120; i++) hearth.record({ item: `film-${i % 30}`, kind: kinds[i % 4] as (typeof kinds)[number] })
      await hearth.flush()
      await hearth.train({ epochs: 2 })
      const candidates = Array.from({ length: 40 }, (_, i) => `film-${i}`)
      const ranked = await hearth.rank(candidates, { surface: 'home' })
      const [logged] = await hearth.decisions(1)
      return { stats: await hearth.stats(), ranked, logged, version: hearth.modelVersion }
    })
    expect(result.stats.events).toBe(125)
    expect(result.version).toBe(1)
    expect(result.ranked.items).toHaveLength(40)
    expect(result.ranked.decision).toEqual(expect.any(String))
    const kinds = new Set(result.ranked.items.map((i) => i.reason.kind))
    for (const kind of kinds) expect(['similar', 'popular', 'exploring']).toContain(kind)
    for (const item of result.ranked.items) {
      expect(item.reason.text.length).toBeGreaterThan(0)
      expect(item.propensity).toBeGreaterThan(0)
      expect(item.propensity).toBeLessThanOrEqual(1)
      // A "similar" reason names an item the user engaged with (films 0..29 here).
      if (item.reason.kind === 'similar') expect(Number(item.reason.item.slice('film-'.length))).toBeLessThan(30)
    }
    expect(kinds.has('similar')).toBe(true)
    expect(result.logged?.id).toBe(result.ranked.decision)
    expect(result.logged?.context).toEqual({ surface: 'home' })
    expect(result.logged?.modelVersion).toBe(1)
    expect(result.logged?.order).toHaveLength(40)
    // The page built the items from the worker's columns; the worker logged from the same columns.
    expect(result.logged?.order.map((k) => `film-${k}`)).toEqual(result.ranked.items.map((i) => i.item))
    expect(result.logged?.scores).toEqual(result.ranked.items.map((i) => i.score))
    expect(result.logged?.propensities).toEqual(result.ranked.items.map((i) => i.propensity))
    expect(result.logged?.reasons).toEqual(result.ranked.items.slice(0, 20).map((i) => i.reason))
  })

  test('paused: rank keeps the app’s order, nothing is recorded or logged', async () => {
    const result = await page.evaluate(async () => {
      const hearth = (window as unknown as TestWindow).hearth
      const before = await hearth.stats()
      await hearth.pause()
      const candidates = ['film-29', 'film-3', 'film-17', 'film-0']
      const ranked = await hearth.rank(candidates)
      for (let i = 0; i < 10; i++) hearth.record({ item: `film-${i}`, kind: 'like' })
      await hearth.flush()
      const during = await hearth.stats()
      const settings = await hearth.settings()
      await hearth.resume()
      return { before, during, ranked, candidates, paused: settings.paused }
    })
    expect(result.paused).toBe(true)
    expect(result.ranked.items.map((i) => i.item)).toEqual(result.candidates)
    expect(result.ranked.decision).toBeNull()
    for (const item of result.ranked.items) expect(item.reason).toMatchObject({ kind: 'app-order', why: 'paused' })
    expect(result.during.events).toBe(result.before.events)
    expect(result.during.decisions).toBe(result.before.decisions)
  })

  test('exportData returns the events; deleteData leaves every IndexedDB store empty', async () => {
    const exported = await page.evaluate(async () => {
      const hearth = (window as unknown as TestWindow).hearth
      const data = await hearth.exportData()
      return { events: data.events.length, items: data.events.map((e) => e.item), decisions: data.decisions.length }
    })
    expect(exported.events).toBe(125)
    expect(exported.items).toContain('old-0')
    expect(exported.items).toContain('film-29')
    expect(exported.decisions).toBe(1)
    const before = await inspectDb(page, DB_NAME)
    expect(before.counts.events).toBe(125)

    await page.evaluate(async () => {
      const hearth = (window as unknown as TestWindow).hearth
      await hearth.deleteData()
      const stats = await hearth.stats()
      if (stats.events !== 0) throw new Error(`stats still count ${stats.events} events`)
    })
    const after = await inspectDb(page, DB_NAME)
    expect(after.version).toBe(DB_VERSION)
    expect(Object.keys(after.counts)).toEqual(expect.arrayContaining(['decisions', 'events', 'models', 'settings']))
    expect(after.counts).toEqual(Object.fromEntries(Object.keys(after.counts).map((store) => [store, 0])))
  })
})
