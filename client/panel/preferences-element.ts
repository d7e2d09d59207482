/**
 * `<hearth-preferences>`: the user's view of, and control over, what Hearth keeps on this device.
 * Give it a `Hearth` instance (`panel.hearth = hearth`); in the script-tag build it takes the
 * instance `Hearth.ready` resolves to by itself. It refreshes on the instance's events, and on
 * `refresh()` (e.g. after the app records something the user should see at once).
 */
import type { HearthEventName } from '../events.ts'
import { downloadExport } from './download.ts'
import { loadSnapshot } from './snapshot.ts'
import type { PanelHearth } from './snapshot.ts'
import { panelStrings } from './strings.ts'
import type { PanelStrings } from './strings.ts'
import { PANEL_CSS } from './styles.ts'
import { PanelView } from './view.ts'

/** What a registration (`definePreferencesPanel`) gives every panel that has not been told otherwise. */
export interface PreferencesPanelDefaults {
  /** The instance to show; a promise (like `Hearth.ready`) is waited for. */
  readonly hearth?: PanelHearth | Promise<PanelHearth>
  readonly strings?: Partial<PanelStrings>
}

/** Events after which what the panel shows may have changed. */
const CHANGES: readonly HearthEventName[] = ['model', 'round', 'training', 'personalization', 'consent', 'federated', 'delete']

// Importing the ES module during server-side rendering must not throw: there is no HTMLElement
// there, and the class is only ever instantiated in a browser.
const ElementBase: typeof HTMLElement = globalThis.HTMLElement ?? (class {} as typeof HTMLElement)

export class HearthPreferencesElement extends ElementBase {
  /** Set on the subclass each registration defines. */
  static defaults: PreferencesPanelDefaults = {}

  readonly #shadow: ShadowRoot
  #hearth: PanelHearth | null = null
  #strings: Partial<PanelStrings> | null = null
  #view: PanelView | null = null
  #listening: PanelHearth | null = null
  #refreshing: Promise<void> | null = null
  #stale = false
  /** User actions run one after another, in the order they were made. */
  #acting: Promise<void> = Promise.resolve()
  readonly #changed = (): void => void this.refresh()

  constructor() {
    super()
    this.#shadow = this.attachShadow({ mode: 'open' })
  }

  /** The Hearth instance shown, or null until one is given (or `Hearth.ready` resolves). */
  get hearth(): PanelHearth | null {
    return this.#hearth
  }

  set hearth(hearth: PanelHearth | null) {
    this.#hearth = hearth
    if (this.isConnected) {
      this.#listen()
      void this.refresh()
    }
  }

  /** Overrides of the string table (see `PanelStrings`); the rest comes from the registration, then English. */
  get strings(): PanelStrings {
    return panelStrings({ ...this.#defaults.strings, ...this.#strings })
  }

  set strings(overrides: Partial<PanelStrings>) {
    this.#strings = overrides
    if (this.#view !== null) {
      this.#render()
      void this.refresh()
    }
  }

  connectedCallback(): void {
    if (this.#view === null) this.#render()
    this.#listen()
    if (this.#hearth === null) void this.#adoptDefault()
    else void this.refresh()
  }

  disconnectedCallback(): void {
    this.#listen()
  }

  /** Reads the device again and redraws; calls made during a refresh share one more pass. */
  refresh(): Promise<void> {
    if (this.#refreshing !== null) {
      this.#stale = true
      return this.#refreshing
    }
    this.#refreshing = this.#load().finally(() => (this.#refreshing = null))
    return this.#refreshing
  }

  get #defaults(): PreferencesPanelDefaults {
    return (this.constructor as typeof HearthPreferencesElement).defaults
  }

  async #load(): Promise<void> {
    do {
      this.#stale = false
      const hearth = this.#hearth
      const view = this.#view
      if (hearth === null || view === null) return
      try {
        const snapshot = await loadSnapshot(hearth, this.strings.recentDays)
        if (hearth === this.#hearth && view === this.#view) view.update(snapshot)
      } catch (error) {
        view.announce(this.strings.failed(messageOf(error)))
        return
      }
    } while (this.#stale)
  }

  async #adoptDefault(): Promise<void> {
    const source = this.#defaults.hearth
    if (source === undefined) return
    try {
      const hearth = await source
      if (this.#hearth === null) this.hearth = hearth
    } catch (error) {
      this.#view?.announce(this.strings.failed(messageOf(error)))
    }
  }

  #render(): void {
    const strings = this.strings
    const style = document.createElement('style')
    style.textContent = PANEL_CSS
    this.#view = new PanelView(strings, {
      personalization: (on) => this.#act((hearth) => (on ? hearth.resume() : hearth.pause()), strings.saved),
      federated: (on) => this.#act((hearth) => hearth.setFederated(on), strings.saved),
      consent: (category, granted) => this.#act(async (hearth) => void (await hearth.setConsent(category, granted)), strings.saved),
      exportData: () => this.#act(async (hearth) => downloadExport(await hearth.exportData(), this.ownerDocument), strings.exported),
      deleteData: () => this.#act((hearth) => hearth.deleteData(), strings.deleted, (view) => view.showDeleted()),
    })
    this.#shadow.replaceChildren(style, this.#view.root)
  }

  /** Listens to the shown instance while connected, and to nothing otherwise. */
  #listen(): void {
    const wanted = this.isConnected ? this.#hearth : null
    if (wanted === this.#listening) return
    for (const type of CHANGES) this.#listening?.removeEventListener(type, this.#changed)
    for (const type of CHANGES) wanted?.addEventListener(type, this.#changed)
    this.#listening = wanted
  }

  #act(work: (hearth: PanelHearth) => Promise<void>, done: string, after?: (view: PanelView) => void): void {
    this.#acting = this.#acting.then(async () => {
      const hearth = this.#hearth
      if (hearth === null) return
      let failure: string | null = null
      try {
        await work(hearth)
      } catch (error) {
        failure = this.strings.failed(messageOf(error))
      }
      // Also after a failure: the switches go back to what the device really holds.
      await this.refresh()
      const view = this.#view
      if (view === null) return
      if (failure === null) after?.(view)
      view.announce(failure ?? done)
    })
  }
}

declare global {
  interface HTMLElementTagNameMap {
    'hearth-preferences': HearthPreferencesElement
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
