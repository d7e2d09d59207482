/**
 * The panel's DOM: built once, then updated in place from snapshots, so the switches and buttons
 * a keyboard user is on keep their focus across refreshes. Real checkboxes and buttons with
 * labels (no ARIA re-implementations), one polite live region for what just happened.
 */
import { h } from './dom.ts'
import { panelFormat } from './format.ts'
import type { PanelFormat } from './format.ts'
import { isEmpty } from './snapshot.ts'
import type { PanelSnapshot } from './snapshot.ts'
import type { PanelStrings } from './strings.ts'
import { decisionsContent, roundsContent, storedContent } from './view-content.ts'

/** What the user asked for; the element carries it out. */
export interface PanelActions {
  readonly personalization: (on: boolean) => void
  readonly federated: (on: boolean) => void
  readonly consent: (category: string, granted: boolean) => void
  readonly exportData: () => void
  readonly deleteData: () => void
}

interface Option {
  readonly box: HTMLElement
  readonly input: HTMLInputElement
  readonly hint: HTMLElement | null
}

/** A checkbox, its label and (when given) a hint read out with it. */
function option(id: string, label: string, hint: string | null, onChange: (checked: boolean) => void): Option {
  const input = h('input', { type: 'checkbox', id, ...(hint === null ? {} : { 'aria-describedby': `${id}-hint` }) })
  input.addEventListener('change', () => onChange(input.checked))
  const hintElement = hint === null ? null : h('p', { class: 'hint', id: `${id}-hint` }, hint)
  const box = h('div', { class: 'option' }, input, h('label', { for: id }, label))
  if (hintElement !== null) box.append(hintElement)
  return { box, input, hint: hintElement }
}

function titled(id: string, title: string, ...children: Node[]): HTMLElement {
  return h('section', { 'aria-labelledby': id }, h('h3', { id }, title), ...children)
}

export class PanelView {
  readonly root: HTMLElement
  readonly #s: PanelStrings
  readonly #f: PanelFormat
  readonly #actions: PanelActions
  readonly #status = h('p', { class: 'status', role: 'status', 'aria-live': 'polite' })
  readonly #loading: HTMLElement
  readonly #body: HTMLElement
  readonly #personalization: Option
  readonly #federated: Option
  readonly #consent: HTMLFieldSetElement
  readonly #consentList = h('div')
  #consentInputs = new Map<string, HTMLInputElement>()
  readonly #empty: HTMLElement
  readonly #details: HTMLElement[]
  readonly #stored = h('div')
  readonly #rounds = h('div')
  readonly #decisions = h('div')
  readonly #deleteButton: HTMLButtonElement
  readonly #confirm: HTMLElement
  readonly #confirmButton: HTMLButtonElement
  readonly #cancelButton: HTMLButtonElement

  constructor(strings: PanelStrings, actions: PanelActions) {
    const s = (this.#s = strings)
    this.#f = panelFormat(s.locale)
    this.#actions = actions
    this.#personalization = option('personalization', s.personalizationLabel, s.personalizationHint, actions.personalization)
    this.#federated = option('federated', s.federatedLabel, s.federatedHint, actions.federated)
    this.#consent = h('fieldset', { class: 'consent', 'aria-describedby': 'consent-hint' }, h('legend', {}, s.consentTitle), h('p', { class: 'hint', id: 'consent-hint' }, s.consentHint), this.#consentList)
    this.#empty = h('div', { class: 'empty', tabindex: '-1' }, h('h3', {}, s.emptyTitle), h('p', {}, s.emptyText))

    const exportButton = h('button', { type: 'button', 'aria-describedby': 'export-hint' }, s.exportButton)
    exportButton.addEventListener('click', () => actions.exportData())
    this.#deleteButton = h('button', { type: 'button', class: 'danger', 'aria-describedby': 'delete-hint' }, s.deleteButton)
    this.#deleteButton.addEventListener('click', () => this.confirmDelete(true))
    this.#confirmButton = h('button', { type: 'button', class: 'danger' }, s.deleteConfirmButton)
    this.#confirmButton.addEventListener('click', () => actions.deleteData())
    this.#cancelButton = h('button', { type: 'button', class: 'secondary' }, s.deleteCancel)
    this.#cancelButton.addEventListener('click', () => this.confirmDelete(false))
    this.#confirm = h('div', { class: 'confirm', role: 'group', 'aria-labelledby': 'confirm-text', hidden: '' }, h('p', { id: 'confirm-text' }, s.deleteConfirm), h('div', { class: 'actions' }, this.#confirmButton, this.#cancelButton))

    this.#details = [
      titled('stored-title', s.storedTitle, this.#stored),
      titled('rounds-title', s.roundsTitle, h('p', { class: 'hint' }, s.roundsHint), this.#rounds),
      titled('decisions-title', s.decisionsTitle, h('p', { class: 'hint' }, s.decisionsHint), this.#decisions),
    ]
    this.#loading = h('p', {}, s.loading)
    this.#body = h(
      'div',
      { hidden: '' },
      titled('controls-title', s.controlsTitle, this.#personalization.box, this.#federated.box, this.#consent),
      this.#empty,
      ...this.#details,
      titled(
        'data-title',
        s.dataTitle,
        h('div', { class: 'actions' }, exportButton),
        h('p', { class: 'hint', id: 'export-hint' }, s.exportHint),
        h('div', { class: 'actions' }, this.#deleteButton),
        h('p', { class: 'hint', id: 'delete-hint' }, s.deleteHint),
        this.#confirm,
      ),
    )
    this.root = h('div', { class: 'panel', role: 'region', 'aria-labelledby': 'panel-title' }, h('h2', { id: 'panel-title' }, s.title), h('p', {}, s.intro), this.#status, this.#loading, this.#body)
  }

  update(snapshot: PanelSnapshot): void {
    const s = this.#s
    this.#loading.hidden = true
    this.#body.hidden = false
    this.#personalization.input.checked = !snapshot.paused
    this.#federated.input.checked = snapshot.federated
    this.#federated.input.disabled = !snapshot.federationAvailable
    if (this.#federated.hint !== null) this.#federated.hint.textContent = snapshot.federationAvailable ? s.federatedHint : s.federatedUnavailable
    this.#updateConsent(snapshot)
    const empty = isEmpty(snapshot)
    this.#empty.hidden = !empty
    for (const section of this.#details) section.hidden = empty
    this.#stored.replaceChildren(...storedContent(snapshot, s, this.#f))
    this.#rounds.replaceChildren(roundsContent(snapshot, s, this.#f))
    this.#decisions.replaceChildren(decisionsContent(snapshot, s, this.#f))
  }

  /** Says what just happened, through the live region. */
  announce(text: string): void {
    // Cleared first so the same words twice are still read out.
    this.#status.textContent = ''
    this.#status.textContent = text
  }

  /** Shows or hides the delete confirmation; focus goes to the safe choice, then back. */
  confirmDelete(open: boolean): void {
    this.#confirm.hidden = !open
    if (open) this.#cancelButton.focus()
    else this.#deleteButton.focus()
  }

  /** After a delete: the confirmation closes and focus lands on the empty state. */
  showDeleted(): void {
    this.#confirm.hidden = true
    this.#empty.focus()
  }

  #updateConsent(snapshot: PanelSnapshot): void {
    const categories = snapshot.consentCategories
    this.#consent.hidden = categories.length === 0
    // Rebuilt only when the categories change, so a focused checkbox stays in place.
    if (categories.join('\u0000') !== [...this.#consentInputs.keys()].join('\u0000')) {
      const options = categories.map((category, i) => option(`consent-${i}`, this.#s.consentLabel(category), null, (granted) => this.#actions.consent(category, granted)))
      this.#consentInputs = new Map(categories.map((category, i) => [category, (options[i] as Option).input]))
      this.#consentList.replaceChildren(...options.map((o) => o.box))
    }
    for (const [category, input] of this.#consentInputs) input.checked = snapshot.settings.consent[category] === true
  }
}
