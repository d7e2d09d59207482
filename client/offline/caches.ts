/**
 * Hearth's caches in the page's Cache Storage: the service worker's precache and runtime caches
 * (and those a previous version or an opted-out app left behind), all named `hearth-…`.
 */
import { CACHE_PREFIX } from './names.ts'

/** Deletes every Hearth cache of this origin; the app's own caches are left alone. */
export async function deleteHearthCaches(): Promise<void> {
  if (!('caches' in globalThis)) return
  const names = (await caches.keys()).filter((name) => name.startsWith(`${CACHE_PREFIX}-`))
  await Promise.all(names.map((name) => caches.delete(name)))
}
