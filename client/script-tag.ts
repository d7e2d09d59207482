/**
 * The script-tag build: defines `window.Hearth`. With `data-aggregator` and `data-app-key` on the
 * script element, Hearth starts by itself and `Hearth.ready` resolves to the instance:
 *
 * ```html
 * <script src="https://cdn.example.com/hearth/hearth.iife.js"
 *         data-aggregator="https://fl.example.com" data-app-key="pk_..."></script>
 * <script>Hearth.ready.then((hearth) => hearth.record({ item: 'a1', kind: 'view' }))</script>
 * ```
 */
import { HearthError } from '../protocol/errors.ts'
import { EventKind } from '../protocol/events.ts'
import { initInBrowser } from './browser.ts'
import type { Hearth } from './hearth.ts'
import type { HearthOptions } from './options.ts'

// Must be read while the script runs: `currentScript` is null once it has finished.
const script = document.currentScript instanceof HTMLScriptElement ? document.currentScript : null
const assetsBase = new URL('./', script?.src ?? document.baseURI)

function init(options: HearthOptions): Promise<Hearth> {
  return initInBrowser(options, assetsBase)
}

function autoInit(): Promise<Hearth> | null {
  const aggregatorUrl = script?.dataset.aggregator
  const appKey = script?.dataset.appKey
  if (aggregatorUrl === undefined || appKey === undefined) return null
  const options: HearthOptions = {
    aggregatorUrl,
    appKey,
    ...(script?.dataset.model === undefined ? {} : { model: script.dataset.model }),
    ...(script?.dataset.federated === 'false' ? { federated: false } : {}),
  }
  return init(options)
}

const started = autoInit()
started?.catch((error: unknown) => console.error('[hearth] could not start:', error))

/** The global `Hearth` namespace of the script-tag build. */
export interface HearthGlobal {
  init(options: HearthOptions): Promise<Hearth>
  /** Resolves to the instance started from the script's data attributes; rejects if there is none. */
  readonly ready: Promise<Hearth>
  readonly HearthError: typeof HearthError
  readonly EventKind: typeof EventKind
}

const ready = started ?? Promise.reject(new HearthError('HEARTH_ERR_NOT_INITIALIZED', 'add data-aggregator and data-app-key to the script tag, or call Hearth.init()'))
// An unobserved rejection here is expected when the app calls init() itself.
ready.catch(() => undefined)

const hearthGlobal: HearthGlobal = { init, ready, HearthError, EventKind }
;(globalThis as { Hearth?: HearthGlobal }).Hearth = hearthGlobal
