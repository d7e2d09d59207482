/**
 * Registers `<hearth-preferences>` (or another tag name) with the page's custom elements.
 */
import { HearthError } from '../../protocol/errors.ts'
import { HearthPreferencesElement } from './preferences-element.ts'
import type { PreferencesPanelDefaults } from './preferences-element.ts'

export const PANEL_TAG = 'hearth-preferences'

export interface DefinePanelOptions extends PreferencesPanelDefaults {
  /** Default `hearth-preferences`. */
  readonly tagName?: string
}

/**
 * Defines the panel element once per tag name and returns its class; a second call with the same
 * name returns the class already defined (its defaults are left as they were).
 *
 * ```ts
 * import { definePreferencesPanel } from 'hearth'
 * definePreferencesPanel()
 * const panel = document.querySelector('hearth-preferences')
 * if (panel !== null) panel.hearth = hearth
 * ```
 */
export function definePreferencesPanel(options: DefinePanelOptions = {}): typeof HearthPreferencesElement {
  const { tagName = PANEL_TAG, ...defaults } = options
  const existing = customElements.get(tagName)
  if (existing !== undefined) {
    if (existing.prototype instanceof HearthPreferencesElement) return existing as typeof HearthPreferencesElement
    throw new HearthError('HEARTH_ERR_INVALID_ARGUMENT', `tagName ${JSON.stringify(tagName)} is already defined by another element`)
  }
  // A subclass per registration, so two tag names can carry different defaults.
  const defined = class extends HearthPreferencesElement {
    static override defaults: PreferencesPanelDefaults = defaults
  }
  customElements.define(tagName, defined)
  return defined
}
