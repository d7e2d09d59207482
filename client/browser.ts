/**
 * Browser wiring: starts the Hearth worker from the assets folder and builds a `Hearth` on it.
 * Kept apart from the entry points so that neither `import.meta` nor `document.currentScript`
 * leaks into code shared by the ES module and the script-tag builds.
 */
import { releaseProxy, wrap } from 'comlink'
import { HearthError } from '../protocol/errors.ts'
import type { HearthWorkerApi } from '../worker/api.ts'
import { Hearth } from './hearth.ts'
import { browserNetworkSignal } from './offline/network-signal.ts'
import { startOffline } from './offline/offline-support.ts'
import { resolveServiceWorker } from './offline/service-worker-options.ts'
import type { HearthOptions } from './options.ts'
import { browserIdleSignal } from './training-scheduler.ts'

/** File names the build writes next to the library; see vite.config.ts. */
export const WORKER_FILE = 'hearth.worker.js'
export const WASM_FOLDER = 'wasm/'

function workerScriptUrl(url: URL): URL | string {
  if (url.origin === globalThis.location.origin) return url
  // Browsers refuse cross-origin worker scripts; a same-origin blob may import one (with CORS).
  const source = `import ${JSON.stringify(url.toString())}`
  return URL.createObjectURL(new Blob([source], { type: 'text/javascript' }))
}

/** Starts Hearth in this page: spawns the worker, opens the store, joins rounds. */
export async function initInBrowser(options: HearthOptions, defaultAssetsBase: URL): Promise<Hearth> {
  const assets = new URL(options.assetsBaseUrl ?? defaultAssetsBase)
  const offline = startOffline(resolveServiceWorker(options.serviceWorker, assets, new URL(document.baseURI)))
  const worker = new Worker(workerScriptUrl(new URL(WORKER_FILE, assets)), { type: 'module', name: 'hearth' })
  const remote = wrap<HearthWorkerApi>(worker)
  const dispose = (): void => {
    remote[releaseProxy]()
    worker.terminate()
  }
  // A worker that fails to load never answers comlink; surface its error instead of hanging.
  const failed = new Promise<never>((_, reject) => {
    worker.addEventListener('error', (event) => {
      reject(new HearthError('HEARTH_ERR_BACKEND', `the Hearth worker failed to start: ${event.message || 'script error'}`))
    })
  })
  try {
    return await Promise.race([
      Hearth.create(options, {
        worker: remote as unknown as HearthWorkerApi,
        createSocket: (url) => new WebSocket(url),
        fetch: offline.fetch,
        wasmBaseUrl: new URL(WASM_FOLDER, assets).toString(),
        dispose,
        idle: browserIdleSignal(),
        offline,
        network: browserNetworkSignal(),
      }),
      failed,
    ])
  } catch (error) {
    dispose()
    throw error
  }
}
