/**
 * The `serviceWorker` option of `Hearth.init()`: where Hearth's service worker is served, which
 * pages it controls, and whether it also keeps the app's pages. See docs/offline.md.
 */
import { HearthError } from '../../protocol/errors.ts'
import { CACHE_PAGES_PARAM, SERVICE_WORKER_FILE } from './names.ts'

export interface ServiceWorkerOptions {
  /** URL of `hearth-sw.js`, on the page's origin. Default: next to the Hearth script. */
  readonly url?: string
  /**
   * The pages it controls (and so serves offline). Default `/`, the whole origin: the worker
   * must then be served from the root or with the header `Service-Worker-Allowed: /`.
   */
  readonly scope?: string
  /**
   * Also keep the app's own pages and the same-origin files they fetch, network first, so the
   * app opens offline. Default false: the app's pages are its own business.
   */
  readonly cachePages?: boolean
}

export interface ResolvedServiceWorker {
  /** False when the app opted out: nothing is registered, but `deleteData()` still cleans up. */
  readonly enabled: boolean
  /** The script URL without the query that carries `cachePages`: how Hearth's registration is recognised. */
  readonly url: URL
  readonly scope: URL
  readonly cachePages: boolean
}

function invalid(detail: string): never {
  throw new HearthError('HEARTH_ERR_INVALID_ARGUMENT', detail)
}

function toUrl(value: unknown, name: string, base: URL): URL {
  if (typeof value !== 'string' || value.length === 0) invalid(`${name} must be a URL string`)
  try {
    return new URL(value, base)
  } catch {
    return invalid(`${name} is not a valid URL: ${value}`)
  }
}

/**
 * Checks the option and fills in defaults; relative URLs resolve against the page. Throws
 * `HEARTH_ERR_INVALID_ARGUMENT` naming the field.
 */
export function resolveServiceWorker(option: ServiceWorkerOptions | false | undefined, assetsBase: URL, page: URL): ResolvedServiceWorker {
  if (option !== undefined && option !== false && (typeof option !== 'object' || option === null)) {
    invalid('serviceWorker must be an object or false')
  }
  const given = option === false || option === undefined ? {} : option
  const url = given.url === undefined ? new URL(SERVICE_WORKER_FILE, assetsBase) : toUrl(given.url, 'serviceWorker.url', page)
  url.search = ''
  url.hash = ''
  const scope = toUrl(given.scope ?? '/', 'serviceWorker.scope', page)
  if (given.cachePages !== undefined && typeof given.cachePages !== 'boolean') invalid('serviceWorker.cachePages must be a boolean')
  return { enabled: option !== false, url, scope, cachePages: given.cachePages === true }
}

/** The URL to register: page caching travels in the query, so turning it on installs a new version. */
export function registrationUrl(config: ResolvedServiceWorker): URL {
  const url = new URL(config.url)
  if (config.cachePages) url.searchParams.set(CACHE_PAGES_PARAM, '1')
  return url
}
