/**
 * Every word the preferences panel shows, in one table, so an app can translate it: pass a
 * partial table as `strings` (on the element or to `definePreferencesPanel`) and the rest stays
 * English. Entries that hold numbers or names are functions; `locale` drives dates and numbers.
 *
 * The wording follows the rule for privacy controls: plain words, and the way off is
 * described as plainly as the way on.
 */
import type { EventKind } from '../../protocol/events.ts'

export interface PanelStrings {
  /** BCP 47 tag for dates and numbers; undefined: the browser's. */
  readonly locale: string | undefined
  readonly title: string
  readonly intro: string
  readonly loading: string

  readonly controlsTitle: string
  readonly personalizationLabel: string
  readonly personalizationHint: string
  readonly federatedLabel: string
  readonly federatedHint: string
  readonly federatedUnavailable: string
  readonly consentTitle: string
  readonly consentHint: string
  readonly consentLabel: (category: string) => string

  readonly storedTitle: string
  readonly eventsTotal: string
  readonly eventsByKind: string
  readonly eventKind: (kind: EventKind) => string
  readonly eventsByAge: string
  readonly recentDays: number
  readonly eventsRecent: (days: number) => string
  readonly eventsOlder: string
  readonly eventsRange: (oldest: string, newest: string) => string
  readonly eventsDropped: (count: string) => string
  readonly eventsExpired: (count: string) => string
  readonly decisionsStored: string
  readonly storageUsed: string
  readonly storageUnknown: string
  readonly modelVersion: string
  readonly modelNone: string
  readonly lastTrained: string
  readonly never: string

  readonly roundsTitle: string
  readonly roundsNone: string
  readonly roundsHint: string
  readonly roundEntry: (roundId: number, date: string, elements: string) => string

  readonly decisionsTitle: string
  readonly decisionsHint: string
  readonly decisionsNone: string
  readonly decisionAt: (date: string) => string
  readonly decisionItem: (item: string, reason: string) => string

  readonly dataTitle: string
  readonly exportButton: string
  readonly exportHint: string
  readonly exported: string
  readonly deleteButton: string
  readonly deleteHint: string
  readonly deleteConfirm: string
  readonly deleteConfirmButton: string
  readonly deleteCancel: string
  readonly deleted: string
  readonly emptyTitle: string
  readonly emptyText: string

  readonly saved: string
  readonly failed: (message: string) => string
}

const KIND_NAMES: Readonly<Record<EventKind, string>> = {
  view: 'Views',
  click: 'Clicks',
  like: 'Likes',
  purchase: 'Purchases',
  dismiss: 'Dismissed',
  dislike: 'Dislikes',
}

export const DEFAULT_STRINGS: PanelStrings = {
  locale: undefined,
  title: 'Personalization on this device',
  intro: 'What you do in this app is kept in this browser to choose what to show you. Here you can see all of it, turn it off, download it or delete it.',
  loading: 'Loading…',

  controlsTitle: 'Choices',
  personalizationLabel: 'Personalize what I see',
  personalizationHint: 'Off: items appear in the app’s own order and nothing new is recorded.',
  federatedLabel: 'Help improve the shared model (federated learning)',
  federatedHint: 'Your device learns from your activity and sends only a masked, clipped update, never your activity itself. Off: it keeps learning here but never takes part in a round.',
  federatedUnavailable: 'This app does not use federated learning: nothing is ever sent.',
  consentTitle: 'Sensitive topics',
  consentHint: 'Not allowed: this kind of information is never stored or read. Turning one off also erases what was stored.',
  consentLabel: (category) => `Use “${category}” to personalize`,

  storedTitle: 'What is stored',
  eventsTotal: 'Activity recorded',
  eventsByKind: 'By kind',
  eventKind: (kind) => KIND_NAMES[kind],
  eventsByAge: 'By age',
  recentDays: 7,
  eventsRecent: (days) => `Last ${days} days`,
  eventsOlder: 'Older',
  eventsRange: (oldest, newest) => `From ${oldest} to ${newest}`,
  eventsDropped: (count) => `${count} older records were deleted to make room.`,
  eventsExpired: (count) => `${count} records were deleted because they were too old.`,
  decisionsStored: 'Recommendations remembered',
  storageUsed: 'Storage used by this site',
  storageUnknown: 'unknown',
  modelVersion: 'Model version',
  modelNone: 'none yet',
  lastTrained: 'Last learned on this device',
  never: 'never',

  roundsTitle: 'Rounds this device took part in',
  roundsNone: 'None: this device has not sent anything.',
  roundsHint: 'In a round, many devices each send a scrambled update; only their sum can be read.',
  roundEntry: (roundId, date, elements) => `Round ${roundId}, ${date}: sent a masked, clipped update of ${elements} numbers`,

  decisionsTitle: 'Why am I seeing this?',
  decisionsHint: 'The latest recommendations, with the reason each item was placed where it was.',
  decisionsNone: 'No recommendations yet.',
  decisionAt: (date) => `Shown ${date}`,
  decisionItem: (item, reason) => `${item}: ${reason}`,

  dataTitle: 'Your data',
  exportButton: 'Download my data',
  exportHint: 'A JSON file with everything listed here.',
  exported: 'Your data was downloaded.',
  deleteButton: 'Delete my data',
  deleteHint: 'Removes your activity, recommendations and what the model learned about you. Your choices go back to their defaults.',
  deleteConfirm: 'Delete everything Hearth keeps about you in this browser? This cannot be undone.',
  deleteConfirmButton: 'Yes, delete everything',
  deleteCancel: 'Cancel',
  deleted: 'Everything was deleted.',
  emptyTitle: 'Nothing is stored',
  emptyText: 'Hearth keeps nothing about you in this browser.',

  saved: 'Saved.',
  failed: (message) => `That did not work: ${message}`,
}

/** The default table with an app's overrides applied. */
export function panelStrings(overrides: Partial<PanelStrings> = {}): PanelStrings {
  return { ...DEFAULT_STRINGS, ...overrides }
}
