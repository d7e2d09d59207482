/**
 * The user's side of Hearth's data: personalization settings (paused or not, consent per
 * category of sensitive feature) and the export format of everything the device holds for the
 * user (`exportData()`, the preferences panel's "download my data"). docs/data-export.md shows
 * the JSON shape with an example.
 *
 * Consent: an app marks item features as sensitive, each with a consent category
 * (`sensitiveFeatures: { topic: 'health' }`). Until the user grants a category, features of that
 * category are dropped from recorded events before they are stored, never logged with decisions,
 * and read as zero by the model; revoking a category also erases the values already stored.
 */
import { HearthError } from './errors.ts'
import { assertFeatureName } from './features.ts'
import type { EventKind, InteractionEvent } from './events.ts'
import type { DecisionRecord } from './ranking.ts'

/** Personalization settings of this device. */
export interface PersonalizationSettings {
  /** Paused: `rank()` keeps the app's order and `record()` stores nothing. */
  readonly paused: boolean
  /**
   * False once the user turned federated learning off: the device still trains on its own data
   * but joins no round. Absent (settings stored before the switch existed) means on.
   */
  readonly federated?: boolean
  /** Consent per category of sensitive features; a category not listed is not granted. */
  readonly consent: Readonly<Record<string, boolean>>
  /** When the settings last changed (epoch ms), or null if never. */
  readonly updatedAt: number | null
}

export const DEFAULT_SETTINGS: PersonalizationSettings = { paused: false, consent: {}, updatedAt: null }

/** Feature name → the consent category it needs. */
export type SensitiveFeatures = Readonly<Record<string, string>>

const CATEGORY = /^[\w.:-]{1,64}$/

/** Checks a consent category name (1 to 64 letters, digits, `_ . : -`). */
export function assertConsentCategory(category: unknown, where: string): asserts category is string {
  if (typeof category !== 'string' || !CATEGORY.test(category)) {
    throw new HearthError('HEARTH_ERR_INVALID_ARGUMENT', `${where} must be a consent category of 1 to 64 letters, digits, _ . : or -, got ${JSON.stringify(category)}`)
  }
}

/** Validates a sensitive-feature map and returns a copy. */
export function toSensitiveFeatures(value: unknown, where: string): SensitiveFeatures {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new HearthError('HEARTH_ERR_INVALID_ARGUMENT', `${where} must map feature names to consent categories, like { topic: 'health' }`)
  }
  const out: Record<string, string> = {}
  for (const [feature, category] of Object.entries(value)) {
    assertFeatureName(feature, `${where} key`)
    assertConsentCategory(category, `${where}.${feature}`)
    out[feature] = category
  }
  return out
}

/** The features whose category is not granted: the ones the device may not read. */
export function withheldFeatures(sensitive: SensitiveFeatures, consent: Readonly<Record<string, boolean>>): Set<string> {
  return new Set(Object.entries(sensitive).filter(([, category]) => consent[category] !== true).map(([feature]) => feature))
}

export const EXPORT_FORMAT = 'hearth-export'
/** Bumped whenever a field changes meaning or disappears; new optional fields keep it. */
export const EXPORT_VERSION = 1

/** A round the device took part in. */
export interface ExportedRound {
  readonly roundId: number
  readonly model: string
  readonly at: number
  readonly elements: number
}

/** The device's model state: versions and its own (local) parameters, which never left it. */
export interface ExportedModel {
  readonly name: string
  readonly architecture: string
  /** The installed global version, or null before the first. */
  readonly globalVersion: number | null
  /** The global version local fine-tuning started from, or null if the serving weights are the global ones. */
  readonly fineTunedFrom: number | null
  readonly lastTrainedAt: number | null
  /** The local tensors (e.g. `user_embedding`), by name, in spec order. */
  readonly localParameters: readonly { readonly name: string; readonly shape: readonly number[]; readonly values: readonly number[] }[]
}

/** Everything Hearth stores on this device for the user, as `exportData()` returns it. */
export interface HearthExport {
  readonly format: typeof EXPORT_FORMAT
  readonly version: typeof EXPORT_VERSION
  readonly exportedAt: number
  readonly settings: PersonalizationSettings
  readonly model: ExportedModel | null
  /** Every stored event, oldest first. */
  readonly events: readonly InteractionEvent[]
  /** Every logged ranking decision, oldest first. */
  readonly decisions: readonly DecisionRecord[]
  readonly rounds: readonly ExportedRound[]
  readonly counts: {
    readonly events: number
    readonly eventsByKind: Readonly<Record<EventKind, number>>
    /** Events deleted to free space or by the retention policy. */
    readonly eventsDropped: number
    readonly decisions: number
  }
}
