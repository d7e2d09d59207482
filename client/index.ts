/**
 * Hearth for the browser, as an ES module.
 *
 * ```ts
 * import * as Hearth from 'hearth'
 * const hearth = await Hearth.init({ aggregatorUrl: 'https://fl.example.com', appKey: 'pk_...' })
 * hearth.record({ item: 'article-42', kind: 'click' })
 * ```
 */
import { initInBrowser } from './browser.ts'
import type { Hearth } from './hearth.ts'
import type { HearthOptions } from './options.ts'

/** Starts Hearth in this page. The worker and wasm files load from next to this module. */
export function init(options: HearthOptions): Promise<Hearth> {
  return initInBrowser(options, new URL('./', import.meta.url))
}

export { Hearth } from './hearth.ts'
export { definePreferencesPanel, PANEL_TAG } from './panel/define.ts'
export type { DefinePanelOptions } from './panel/define.ts'
export { HearthPreferencesElement } from './panel/preferences-element.ts'
export type { PreferencesPanelDefaults } from './panel/preferences-element.ts'
export type { PanelHearth } from './panel/snapshot.ts'
export { DEFAULT_STRINGS } from './panel/strings.ts'
export type { PanelStrings } from './panel/strings.ts'
export type { HearthOptions } from './options.ts'
export type {
  HearthEventMap,
  ModelEventDetail,
  RoundEventDetail,
  ErrorEventDetail,
  PersonalizationEventDetail,
  ConsentEventDetail,
  FederatedEventDetail,
  DeleteEventDetail,
  TrainingEventDetail,
} from './events.ts'
export type { TrainingSchedule } from './options.ts'
export type { ServiceWorkerOptions } from './offline/service-worker-options.ts'
export type { DeviceStats, RoundParticipation, LocalTrainingResult, TrainingBudget, OffPolicyRequest, OffPolicyReport } from '../worker/api.ts'
export type { PersonalizationOptions } from '../worker/api.ts'
export type { RankCandidate, RankOptions, RankResult, RankedItem, Reason, ExplorationConfig, DecisionRecord, DecisionOutcome } from '../protocol/ranking.ts'
export type { HearthExport, PersonalizationSettings, SensitiveFeatures } from '../protocol/personal-data.ts'
export type { ItemFeatures, FeatureValue } from '../protocol/features.ts'
export { HearthError } from '../protocol/errors.ts'
export type { ErrorCode } from '../protocol/errors.ts'
export { EventKind } from '../protocol/events.ts'
export type { InteractionInput } from '../protocol/events.ts'
