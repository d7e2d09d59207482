/**
 * Hearth's service worker (`hearth-sw.js`, built by `vite build --mode sw` after the other
 * builds): keeps what Hearth needs to start without a network.
 *
 * - Precache: the library, the worker and its chunks, the wasm binaries, each with a revision
 *   (the build writes the list into `self.__WB_MANIFEST`), so a new build replaces them.
 * - Runtime, network first: the aggregator's model description and the weights of the current
 *   version, recognised by Hearth's app-key header on any origin (CORS responses are cacheable).
 * - Only when the registration URL carries `?pages=1`: the app's pages and every same-origin GET
 *   they make, network first, so the whole app opens offline.
 *
 * A new version waits until no page uses the old one (no `skipWaiting`), so a page's library and
 * the worker it starts always come from the same build; the first version claims open pages at
 * once, so offline use starts with the first visit.
 */
import { clientsClaim, setCacheNameDetails } from 'workbox-core'
import type { WorkboxPlugin } from 'workbox-core'
import { cleanupOutdatedCaches, precacheAndRoute } from 'workbox-precaching'
import type { PrecacheEntry } from 'workbox-precaching'
import { registerRoute } from 'workbox-routing'
import { NetworkFirst } from 'workbox-strategies'
import { ROUTES } from '../../../protocol/messages.ts'
import { APP_KEY_HEADER } from '../../transport/model-fetcher.ts'
import { CACHE_PAGES_PARAM, CACHE_PREFIX, MODEL_CACHE, PAGE_CACHE } from '../names.ts'

declare const self: ServiceWorkerGlobalScope & { __WB_MANIFEST: PrecacheEntry[] }

setCacheNameDetails({ prefix: CACHE_PREFIX })
clientsClaim()
cleanupOutdatedCaches()
precacheAndRoute(self.__WB_MANIFEST)

const MODELS_PATH = ROUTES.model('')
const VERSION_PATH = /\/versions\/\d+$/

/**
 * Numbered versions never change, so once a version is cached the older ones of the same model
 * are only dead weight: keep the newest alone, which bounds the cache to one version per model.
 */
const keepLatestVersion: WorkboxPlugin = {
  async cacheDidUpdate({ cacheName, request }) {
    const url = new URL(request.url)
    if (!VERSION_PATH.test(url.pathname)) return
    const model = url.pathname.replace(VERSION_PATH, '/versions/')
    const cache = await caches.open(cacheName)
    for (const key of await cache.keys()) {
      const other = new URL(key.url)
      if (other.origin === url.origin && other.pathname !== url.pathname && other.pathname.startsWith(model)) await cache.delete(key)
    }
  },
}

const cachePages = new URL(self.location.href).searchParams.get(CACHE_PAGES_PARAM) === '1'
const runtimeCaches = cachePages ? [MODEL_CACHE, PAGE_CACHE] : [MODEL_CACHE]

// The runtime caches are made at install and never again: once `deleteData()` has deleted them,
// this worker (which keeps serving open pages until they close) must not bring them back.
self.addEventListener('install', (event) => event.waitUntil(Promise.all(runtimeCaches.map((name) => caches.open(name)))))
const onlyIfKept: WorkboxPlugin = {
  async cacheWillUpdate({ response }) {
    return (await Promise.all(runtimeCaches.map((name) => caches.has(name)))).every(Boolean) ? response : null
  },
}

registerRoute(
  // Only Hearth's own requests carry the app key: an app route under the same path is left alone.
  ({ request, url }) => request.headers.has(APP_KEY_HEADER) && url.pathname.startsWith(MODELS_PATH),
  new NetworkFirst({ cacheName: MODEL_CACHE, plugins: [onlyIfKept, keepLatestVersion] }),
)

if (cachePages) {
  // After the precache route, so Hearth's own files still come from the precache.
  registerRoute(({ url }) => url.origin === self.location.origin, new NetworkFirst({ cacheName: PAGE_CACHE, plugins: [onlyIfKept] }))
}
