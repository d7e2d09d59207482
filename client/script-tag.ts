/**
 * The script-tag build: defines `window.Hearth`. With `data-aggregator` and `data-app-key` on the
 * script element, Hearth starts by itself and `Hearth.ready` resolves to the instance:
 *
 * ```html
 * <script src="https://cdn.example.com/hearth/hearth.iife.js"
 *         data-aggregator="https://fl.example.com" data-app-key="pk_..."></script>
 * <script>Hearth.ready.then((hearth) => hearth.record({ item: 'a1', kind: 'view' }))</script>
 * ```
 *
 * It also defines `<hearth-preferences>`, which shows the first instance started here unless given another.
 */
import { HearthError } from '../protocol/errors.ts'
import { EventKind } from '../protocol/events.ts'
import { initInBrowser } from './browser.ts'
import type { Hearth } from './hearth.ts'
import type { HearthOptions } from './options.ts'
import { definePreferencesPanel } from './panel/define.ts'

// Must be read while the script runs: `currentScript` is null once it has finished.
const script = document.currentScript instanceof HTMLScriptElement ? document.currentScript : null
const assetsBase = new URL('./', script?.src ?? document.baseURI)

let announceFirst: (hearth: Hearth) => void = () => undefined
/** The first instance the app's own `init()` started. */
const firstInit = new Promise<Hearth>((resolve) => (announceFirst = resolve))

async function init(options: HearthOptions): Promise<Hearth> {
  const hearth = await initInBrowser(options, assetsBase)
  announceFirst(hearth)
  return hearth
}

/**
 * `data-service-worker="off"` opts out of offline support; `data-service-worker-scope` and
 * `data-cache-pages` are the `serviceWorker` option's `scope` and `cachePages`.
 */
function serviceWorkerOption(data: DOMStringMap | undefined): Pick<HearthOptions, 'serviceWorker'> {
  if (data?.serviceWorker === 'off' || data?.serviceWorker === 'false') return { serviceWorker: false }
  const scope = data?.serviceWorkerScope
  const cachePages = data?.cachePages
  if (scope === undefined && cachePages === undefined) return {}
  return { serviceWorker: { ...(scope === undefined ? {} : { scope }), cachePages: cachePages !== undefined && cachePages !== 'false' } }
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
    ...serviceWorkerOption(script?.dataset),
  }
  return init(options)
}

const started = autoInit()
started?.catch((error: unknown) => console.error('[hearth] could not start:', error))

// Panels without a `hearth` of their own show the instance started here: by the data attributes
// (a failure to start is then reported in the panel), else by the app's first `init()`.
definePreferencesPanel({ hearth: started ?? firstInit })

/** The global `Hearth` namespace of the script-tag build. */
export interface HearthGlobal {
  init(options: HearthOptions): Promise<Hearth>
  /** Resolves to the instance started from the script's data attributes; rejects if there is none. */
  readonly ready: Promise<Hearth>
  readonly HearthError: typeof HearthError
  readonly EventKind: typeof EventKind
  /** Registers the panel under another tag name or with other strings (`<hearth-preferences>` is already defined). */
  readonly definePreferencesPanel: typeof definePreferencesPanel
}

const ready = started ?? Promise.reject(new HearthError('HEARTH_ERR_NOT_INITIALIZED', 'add data-aggregator and data-app-key to the script tag, or call Hearth.init()'))
// An unobserved rejection here is expected when the app calls init() itself.
ready.catch(() => undefined)

const hearthGlobal: HearthGlobal = { init, ready, HearthError, EventKind, definePreferencesPanel }
;(globalThis as { Hearth?: HearthGlobal }).Hearth = hearthGlobal
