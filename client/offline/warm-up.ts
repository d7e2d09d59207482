/**
 * On the first visit the page fetched the model, and loaded itself, before Hearth's service
 * worker was installed, so none of it reached the worker's caches. Once the worker controls the
 * page (right after it installs, as it claims open pages), those requests are made again through
 * it: the first visit then already leaves what an offline start needs.
 */
import type { FetchFunction } from '../transport/model-fetcher.ts'
import { scriptOf } from './registration.ts'

export class WarmUp {
  readonly #script: URL
  /** The app keeps its pages, and this one loaded before the worker controlled it. */
  readonly #pagesMissed: boolean
  /** Hearth's requests that went around the service worker, by URL. */
  readonly #missed = new Map<string, RequestInit | undefined>()

  /** `script`: Hearth's service worker; `cachePages`: also fetch the page and its same-origin files again. */
  constructor(script: URL, cachePages: boolean) {
    this.#script = script
    this.#pagesMissed = cachePages && !this.#controlled()
  }

  /** The `fetch` Hearth's model downloads go through: it notes those Hearth's worker did not see. */
  readonly fetch: FetchFunction = async (input, init) => {
    const seen = this.#controlled()
    const response = await globalThis.fetch(input, init)
    if (!seen && response.ok) this.#missed.set(input, init)
    return response
  }

  /** Repeats the missed requests through the worker now controlling the page; failures only mean a colder cache. */
  async run(): Promise<void> {
    const requests = [...this.#missed]
    this.#missed.clear()
    if (this.#pagesMissed) {
      const own = performance.getEntriesByType('resource').filter((entry) => new URL(entry.name).origin === location.origin)
      for (const url of [location.href, ...own.map((entry) => entry.name)]) requests.push([url, undefined])
    }
    await Promise.allSettled(requests.map(([url, init]) => globalThis.fetch(url, init)))
  }

  #controlled(): boolean {
    return scriptOf(navigator.serviceWorker?.controller) === this.#script.href
  }
}
