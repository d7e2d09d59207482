/**
 * `exportData()`: everything the device stores for the user, in the documented JSON shape of
 * `protocol/personal-data.ts` (`HearthExport`, docs/data-export.md). Typed arrays become plain
 * number arrays so that `JSON.stringify` of the result is the file a user downloads.
 */
import { localLayout } from '../../protocol/model-spec.ts'
import type { ModelSpec } from '../../protocol/model-spec.ts'
import { EXPORT_FORMAT, EXPORT_VERSION } from '../../protocol/personal-data.ts'
import type { ExportedModel, HearthExport, PersonalizationSettings } from '../../protocol/personal-data.ts'
import type { DeviceStore } from '../store/device-store.ts'

/** The model state the core holds in memory. */
export interface ModelState {
  readonly spec: ModelSpec
  readonly version: number | null
  readonly fineTunedFrom: number | null
  /** The flat local vector (spec order of the local tensors). */
  readonly local: Float32Array
}

/** Reads `store` and `model` into a `HearthExport`. */
export async function exportData(store: DeviceStore, settings: PersonalizationSettings, model: ModelState, now: number): Promise<HearthExport> {
  const [summary, events, decisions, rounds, dropped, expired, lastTrainedAt] = await Promise.all([
    store.summarizeEvents(),
    store.recentEvents(Number.MAX_SAFE_INTEGER),
    store.recentDecisions(Number.MAX_SAFE_INTEGER),
    store.listRounds(),
    store.getMeta('eventsDropped'),
    store.getMeta('eventsExpired'),
    store.getMeta('lastTrainedAt'),
  ])
  const exported: ExportedModel = {
    name: model.spec.name,
    architecture: model.spec.architecture,
    globalVersion: model.version,
    fineTunedFrom: model.fineTunedFrom,
    lastTrainedAt,
    localParameters: localLayout(model.spec).map(({ tensor, offset, size }) => ({
      name: tensor.name,
      shape: [...tensor.shape],
      values: Array.from(model.local.subarray(offset, offset + size)),
    })),
  }
  return {
    format: EXPORT_FORMAT,
    version: EXPORT_VERSION,
    exportedAt: now,
    settings,
    model: exported,
    events: events.reverse(),
    decisions: decisions.reverse(),
    rounds: rounds.map(({ roundId, model: name, at, elements }) => ({ roundId, model: name, at, elements })),
    counts: {
      events: summary.count,
      eventsByKind: summary.byKind,
      eventsDropped: (dropped ?? 0) + (expired ?? 0),
      decisions: decisions.length,
    },
  }
}
