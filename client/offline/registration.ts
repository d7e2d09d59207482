/**
 * Registers Hearth's service worker with workbox-window, and finds it again to unregister it.
 * Hearth's registration is recognised by its script URL, so an app's own service worker is
 * never replaced nor unregistered.
 */
import { Workbox } from 'workbox-window'
import { HearthError } from '../../protocol/errors.ts'
import { registrationUrl } from './service-worker-options.ts'
import type { ResolvedServiceWorker } from './service-worker-options.ts'

function problem(detail: string, cause?: unknown): HearthError {
  return new HearthError('HEARTH_ERR_SERVICE_WORKER', detail, cause === undefined ? undefined : { cause })
}

/** A worker's script URL without the query (which only carries Hearth's `cachePages`). */
export function scriptOf(worker: ServiceWorker | null | undefined): string | null {
  if (worker === null || worker === undefined) return null
  const url = new URL(worker.scriptURL)
  url.search = ''
  return url.href
}

function registeredScript(registration: ServiceWorkerRegistration): string | null {
  return scriptOf(registration.active ?? registration.waiting ?? registration.installing)
}

function isHearths(registration: ServiceWorkerRegistration, script: URL): boolean {
  return registeredScript(registration) === script.href
}

/**
 * Registers the worker for its scope and calls `onControlling` once it controls the page;
 * resolves to the problem that prevented it, or null. Never rejects: offline support is an
 * addition, and Hearth works on without it.
 */
export async function registerHearthWorker(config: ResolvedServiceWorker, onControlling: () => void): Promise<HearthError | null> {
  if (!('serviceWorker' in navigator)) return problem('service workers are unavailable on this page: they need HTTPS (or localhost)')
  if (config.url.origin !== location.origin) {
    return problem(`${config.url.href} is not on the page's origin (${location.origin}): serve a copy there and pass serviceWorker.url, or pass serviceWorker: false`)
  }
  try {
    const existing = await navigator.serviceWorker.getRegistration(config.scope.href)
    // One registration per scope: registering ours would silently replace the app's own worker.
    if (existing !== undefined && existing.scope === config.scope.href && !isHearths(existing, config.url)) {
      return problem(`the app's service worker ${registeredScript(existing) ?? ''} already controls ${config.scope.href}: give Hearth another serviceWorker.scope, or pass serviceWorker: false`)
    }
    const workbox = new Workbox(registrationUrl(config).href, { scope: config.scope.href })
    await workbox.register()
    void workbox.controlling.then(onControlling)
    return null
  } catch (cause) {
    return problem(`registering ${config.url.href} for ${config.scope.href} failed: ${cause instanceof Error ? cause.message : String(cause)}`, cause)
  }
}

/** Unregisters every registration of this origin whose script is Hearth's `script`. */
export async function unregisterHearthWorker(script: URL): Promise<void> {
  if (!('serviceWorker' in navigator)) return
  const registrations = await navigator.serviceWorker.getRegistrations()
  await Promise.all(registrations.filter((registration) => isHearths(registration, script)).map((registration) => registration.unregister()))
}
