/**
 * The privacy ledger of a model as one JSON document for audit: every entry, and the ε the
 * accountant reports after replaying all of them. `GET /admin/models/:model/ledger` and
 * `hearth ledger export` both build it here, so the two always agree.
 *
 * The ε is recomputed from the entries' events (not copied from the last entry), so an auditor
 * can check each entry's recorded cumulative ε against an independent replay.
 */
import { RdpAccountant } from '../../protocol/dp/accountant.ts'
import type { PrivacyBudget } from '../../protocol/dp/budget.ts'
import type { PrivacyMode } from '../../protocol/messages.ts'
import type { LedgerEntry, ModelPrivacyState, PrivacyRefusal, SamplingConfig } from '../store/store.ts'
import type { ResolvedPrivacy } from './options.ts'
import { samplingAssumption, TRUST_ASSUMPTIONS } from './trust.ts'

/** The exported ledger. */
export interface LedgerExport {
  readonly model: string
  /** Epoch milliseconds. */
  readonly exportedAt: number
  /** The aggregator's DP mode now (`none` when off); offline, the mode of the last entry. */
  readonly mode: PrivacyMode | 'none'
  readonly trustAssumption: string
  /** How cohorts are drawn and the q the accountant uses, in numbers and in words. */
  readonly sampling: { readonly kind: SamplingConfig['kind']; readonly samplingRate: number; readonly assumption: string } | null
  /** The budget in force (offline: the one the last entry was checked against); null if none. */
  readonly budget: PrivacyBudget | null
  /** ε after every entry, by an independent replay, at `budget.delta`; null without a budget. */
  readonly epsilon: number | null
  /** The Rényi order of `epsilon`. */
  readonly order: number | null
  /** Entries (DP rounds) in the ledger. */
  readonly rounds: number
  /** C of the next round; null when unknown (DP off, or offline with nothing recorded). */
  readonly clipNorm: number | null
  /** Why the last attempt to open a round was refused, if it was. */
  readonly refusal: PrivacyRefusal | null
  readonly entries: readonly LedgerEntry[]
}

export interface LedgerExportInput {
  readonly model: string
  readonly entries: readonly LedgerEntry[]
  readonly state: ModelPrivacyState | undefined
  /** The running configuration; absent for an export read from the data directory alone. */
  readonly current?: {
    readonly privacy: ResolvedPrivacy | null
    readonly sampling: SamplingConfig
    /** The clip norm of the model's next round, when DP is on. */
    readonly clipNorm: number | null
  }
  readonly now: number
}

/** Builds the export (see the module note). */
export function buildLedgerExport(input: LedgerExportInput): LedgerExport {
  const { model, entries, state, current, now } = input
  const last = entries[entries.length - 1]
  const budget = current?.privacy?.budget ?? last?.budget ?? null
  let epsilon: number | null = null
  let order: number | null = null
  if (budget !== null) {
    const accountant = new RdpAccountant()
    for (const entry of entries) accountant.compose(entry.event, entry.count)
    ;({ epsilon, order } = accountant.epsilonAndOrder(budget.delta))
  }
  let mode: PrivacyMode | 'none'
  let sampling: SamplingConfig | null
  let clipNorm: number | null
  if (current !== undefined) {
    mode = current.privacy?.mode ?? 'none'
    sampling = current.sampling
    clipNorm = current.clipNorm
  } else {
    mode = last?.mode ?? 'none'
    sampling = last === undefined ? null : last.sampling === 'poisson' ? { kind: 'poisson', rate: last.samplingRate } : { kind: 'uniform' }
    clipNorm = state?.clipNorm ?? last?.clipping.nextClipNorm ?? null
  }
  return {
    model,
    exportedAt: now,
    mode,
    trustAssumption: TRUST_ASSUMPTIONS[mode],
    sampling: sampling === null ? null : { kind: sampling.kind, samplingRate: sampling.kind === 'poisson' ? sampling.rate : 1, assumption: samplingAssumption(sampling) },
    budget,
    epsilon,
    order,
    rounds: entries.length,
    clipNorm,
    refusal: state?.refusal ?? null,
    entries,
  }
}
