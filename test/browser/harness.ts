/**
 * What the browser tests stand on: a real aggregator on a fresh data directory, a site serving
 * the bundle global-setup.ts built (under `/hearth/`) beside the test's own pages, Debian's
 * Chromium (chromium.ts), and Node devices that join the page's rounds. `close()` ends them all,
 * the devices first; a harness that fails to start ends what it had started. (dashboard.test.ts
 * needs none of it but Chromium: the aggregator serves that page itself.)
 *
 * Also here, what several tests ask of a page: the script-tag embed, the model version it reaches,
 * and the Update frames it sends.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { inject } from 'vitest'
import { WebSocket } from 'ws'
import type { AggregatorOptions } from '../../aggregator/options.ts'
import { startAggregator } from '../../aggregator/server.ts'
import type { AggregatorHandle } from '../../aggregator/server.ts'
import { createHearth } from '../../client/hearth.ts'
import type { Hearth, HearthDependencies } from '../../client/hearth.ts'
import type { HearthOptions } from '../../client/options.ts'
import { simulatedUser } from '../../demo/catalog.ts'
import { startStaticServer } from '../../demo/static-server.ts'
import type { StaticServer } from '../../demo/static-server.ts'
import { decodeFrame, FrameKind } from '../../protocol/frames.ts'
import { createWorkerCore } from '../../worker/core.ts'
import { MemoryDeviceStore } from '../../worker/store/memory-store.ts'
import { launchChromium } from './chromium.ts'

/** A page of the test site: HTML, or a body of another content type. */
export type SitePage = string | { readonly type: string; readonly body: string }

export interface HarnessOptions {
  /** Names the temporary data directory (`hearth-<name>-…`). */
  readonly name: string
  /** The one app key the aggregator accepts, and the Node devices use. */
  readonly appKey: string
  /** The aggregator's other options; it listens on a free port of 127.0.0.1 and keeps its data in the directory. */
  readonly aggregator: Omit<AggregatorOptions, 'port' | 'dataDir' | 'appKeys'>
  /** The site's own pages by path, given the aggregator's URL. */
  readonly pages: (aggregatorUrl: string) => Readonly<Record<string, SitePage>>
}

export interface NodeDeviceOptions {
  /** Seeds its worker core and its simulated user; its store is named `node-<seed>`. */
  readonly seed: number
  /** How many of the simulated user's events it records and flushes before it is returned. */
  readonly events: number
  /** Options beyond the aggregator, the app key, the CPU backend and the store name. */
  readonly options?: Partial<HearthOptions>
  /** In place of the worker core on a memory store, a `ws` socket and Node's fetch. */
  readonly deps?: Partial<HearthDependencies>
}

export interface BrowserHarness {
  readonly aggregator: AggregatorHandle
  readonly site: StaticServer
  readonly browser: Browser
  /** A Hearth running in Node against the aggregator; closed by `close()`. */
  nodeDevice(device: NodeDeviceOptions): Promise<Hearth>
  /** Closes the Node devices (whatever their outcome), then Chromium, the site, the aggregator, and removes its data. */
  close(): Promise<void>
}

export async function startHarness(options: HarnessOptions): Promise<BrowserHarness> {
  const devices: Hearth[] = []
  const dataDir = await mkdtemp(join(tmpdir(), `hearth-${options.name}-`))
  /** What to undo, in the order it was done. */
  const started: (() => Promise<unknown>)[] = [() => rm(dataDir, { recursive: true, force: true })]
  const close = async (): Promise<void> => {
    await Promise.allSettled(devices.splice(0).map((device) => device.close()))
    for (const stop of started.splice(0).reverse()) await stop()
  }
  try {
    const aggregator = await startAggregator({ ...options.aggregator, port: 0, dataDir, appKeys: [options.appKey] })
    started.push(() => aggregator.close())
    const pages = options.pages(aggregator.url)
    const site = await startStaticServer([{ prefix: '/hearth/', dir: inject('distDir') }], '127.0.0.1', 0, (app) => {
      for (const [path, page] of Object.entries(pages)) {
        const { type, body } = typeof page === 'string' ? { type: 'text/html', body: page } : page
        app.get(path, async (_request, reply) => reply.type(type).send(body))
      }
    })
    started.push(() => site.close())
    const browser = await launchChromium()
    started.push(() => browser.close())

    const nodeDevice = async ({ seed, events, options: extra, deps }: NodeDeviceOptions): Promise<Hearth> => {
      const device = await createHearth(
        { aggregatorUrl: aggregator.url, appKey: options.appKey, backends: ['cpu'], dbName: `node-${seed}`, ...extra },
        {
          createSocket: (url) => new WebSocket(url),
          fetch: (input, init) => fetch(input, init),
          ...deps,
          worker: deps?.worker ?? createWorkerCore({ openStore: async () => new MemoryDeviceStore(), seed }),
        },
      )
      devices.push(device)
      const user = simulatedUser(seed)
      for (let i = 0; i < events; i++) device.record(user.next())
      await device.flush()
      return device
    }
    return { aggregator, site, browser, nodeDevice, close }
  } catch (error) {
    await close().catch(() => undefined)
    throw error
  }
}

/** A page that embeds Hearth with the script tag; `attributes` go on the tag after the two required ones. */
export function embedPage(title: string, aggregatorUrl: string, appKey: string, attributes = ''): string {
  return `<!doctype html><meta charset="utf-8"><title>${title}</title>
<script src="/hearth/hearth.iife.js" data-aggregator="${aggregatorUrl}" data-app-key="${appKey}"${attributes === '' ? '' : ` ${attributes}`}></script>`
}

/** The model version of the page's `Hearth.ready` instance: once it holds `version` or later, else the next one it loads. */
export function waitForModel(page: Page, version: number): Promise<number> {
  return page.evaluate(
    (atLeast) =>
      new Promise<number>((resolve) => {
        void window.Hearth.ready.then((hearth) => {
          if ((hearth.modelVersion ?? 0) >= atLeast) resolve(hearth.modelVersion as number)
          hearth.addEventListener('model', (event) => resolve(event.detail.version))
        })
      }),
    version,
  )
}

/** Calls `listener` with every Update frame `page` sends on any WebSocket, as it went on the wire. */
export function onUpdateSent(page: Page, listener: (frame: { readonly id: number; readonly values: Float32Array }) => void): void {
  page.on('websocket', (socket) => {
    socket.on('framesent', ({ payload }) => {
      if (typeof payload === 'string') return
      const frame = decodeFrame(new Uint8Array(payload))
      if (frame.kind === FrameKind.Update) listener(frame)
    })
  })
}
