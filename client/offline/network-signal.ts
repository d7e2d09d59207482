/**
 * Tells when the browser's network comes or goes (`online` and `offline` on `window`). Hearth
 * ends its round session on either: see `Hearth`'s network handling.
 */

export interface NetworkSignal {
  /** Calls `changed` on every change with the new state; returns a function that stops it. */
  subscribe(changed: (online: boolean) => void): () => void
}

export function browserNetworkSignal(): NetworkSignal {
  return {
    subscribe(changed) {
      const online = (): void => changed(true)
      const offline = (): void => changed(false)
      globalThis.addEventListener('online', online)
      globalThis.addEventListener('offline', offline)
      return () => {
        globalThis.removeEventListener('online', online)
        globalThis.removeEventListener('offline', offline)
      }
    },
  }
}
