/**
 * What the preferences panel reads from a `Hearth` instance, gathered in one pass so a render
 * never mixes two moments. Everything comes from the device itself.
 */
import type { PersonalizationSettings } from '../../protocol/personal-data.ts'
import type { DecisionRecord } from '../../protocol/ranking.ts'
import type { DeviceStats, RoundParticipation } from '../../worker/api.ts'
import type { Hearth } from '../hearth.ts'

/** The part of `Hearth` the panel uses; an app may hand it anything that behaves the same. */
export type PanelHearth = Pick<
  Hearth,
  | 'stats'
  | 'countEvents'
  | 'rounds'
  | 'decisions'
  | 'settings'
  | 'setConsent'
  | 'pause'
  | 'resume'
  | 'paused'
  | 'federated'
  | 'federationAvailable'
  | 'setFederated'
  | 'consentCategories'
  | 'exportData'
  | 'deleteData'
  | 'addEventListener'
  | 'removeEventListener'
>

export interface PanelSnapshot {
  readonly stats: DeviceStats
  /** Events of the last `recentDays` days. */
  readonly recentEvents: number
  readonly rounds: readonly RoundParticipation[]
  readonly decisions: readonly DecisionRecord[]
  readonly settings: PersonalizationSettings
  readonly paused: boolean
  readonly federated: boolean
  readonly federationAvailable: boolean
  readonly consentCategories: readonly string[]
  /** Bytes this origin uses (`navigator.storage.estimate()`), or null where unknown. */
  readonly storageBytes: number | null
}

/** Decisions the panel lists. */
export const SHOWN_DECISIONS = 5
const DAY_MS = 86_400_000

async function storageUsage(): Promise<number | null> {
  // `navigator.storage` is missing outside secure contexts, and some private windows refuse an
  // estimate: the panel then says "unknown" rather than failing.
  try {
    const estimate = await navigator.storage?.estimate()
    return estimate?.usage ?? null
  } catch {
    return null
  }
}

export async function loadSnapshot(hearth: PanelHearth, recentDays: number, now = Date.now()): Promise<PanelSnapshot> {
  const [stats, recentEvents, rounds, decisions, settings, storageBytes] = await Promise.all([
    hearth.stats(),
    hearth.countEvents(now - recentDays * DAY_MS),
    hearth.rounds(),
    hearth.decisions(SHOWN_DECISIONS),
    hearth.settings(),
    storageUsage(),
  ])
  return {
    stats,
    recentEvents,
    rounds,
    decisions,
    settings,
    paused: hearth.paused,
    federated: hearth.federated,
    federationAvailable: hearth.federationAvailable,
    consentCategories: hearth.consentCategories,
    storageBytes,
  }
}

/** True when the device holds nothing about the user. */
export function isEmpty(snapshot: PanelSnapshot): boolean {
  return snapshot.stats.events === 0 && snapshot.stats.decisions === 0 && snapshot.rounds.length === 0 && snapshot.stats.lastTrainedAt === null
}
