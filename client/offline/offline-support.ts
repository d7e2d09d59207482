/**
 * Offline support in a page: Hearth's service worker (unless the app opted out) and the means to
 * remove every trace of it when the user deletes their data.
 */
import type { HearthError } from '../../protocol/errors.ts'
import type { FetchFunction } from '../transport/model-fetcher.ts'
import { deleteHearthCaches } from './caches.ts'
import { registerHearthWorker, unregisterHearthWorker } from './registration.ts'
import type { ResolvedServiceWorker } from './service-worker-options.ts'
import { WarmUp } from './warm-up.ts'

/** What `Hearth` needs from the page's offline support (`HearthDependencies.offline`). */
export interface OfflineSupport {
  /** The `fetch` for Hearth's model downloads, so the first visit's reach the worker's cache too (`warm-up.ts`). */
  readonly fetch: FetchFunction
  /** Settles once registration is done: null, or the problem to report as an `error` event. */
  readonly registered: Promise<HearthError | null>
  /** Unregisters Hearth's service worker and deletes Hearth's caches; the next `init()` registers it again. */
  remove(): Promise<void>
}

/** Registers the service worker in the background (workbox-window waits for the page's `load`). */
export function startOffline(config: ResolvedServiceWorker): OfflineSupport {
  const warmUp = new WarmUp(config.url, config.cachePages)
  const registered = config.enabled ? registerHearthWorker(config, () => void warmUp.run()) : Promise.resolve(null)
  return {
    fetch: config.enabled ? warmUp.fetch : (input, init) => globalThis.fetch(input, init),
    registered,
    async remove() {
      // After registration settles, or an install still under way could bring the caches back.
      await registered
      await unregisterHearthWorker(config.url)
      await deleteHearthCaches()
    },
  }
}
