/**
 * Names the page and Hearth's service worker must agree on. Every cache Hearth creates is named
 * `hearth-…` (`CACHE_PREFIX` and a dash, as workbox joins its names), so `deleteData()` can
 * remove them all without touching the app's own caches.
 */
export const SERVICE_WORKER_FILE = 'hearth-sw.js'
export const CACHE_PREFIX = 'hearth'
/** Model descriptions and the weights of the current version, by the aggregator's URLs. */
export const MODEL_CACHE = `${CACHE_PREFIX}-models`
/** The app's own pages and files, only when the app opts in (`serviceWorker.cachePages`). */
export const PAGE_CACHE = `${CACHE_PREFIX}-pages`
/** Query parameter of the service worker's URL that turns page caching on. */
export const CACHE_PAGES_PARAM = 'pages'
