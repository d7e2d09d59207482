/**
 * The worker's IndexedDB schema and its migrations.
 *
 * Version 1:
 * - `events`: interaction events, auto-increment keys (insertion order); indexes `by-at`
 *   (event time: oldest-first deletion, newest-first reads) and `by-kind` (counts for stats);
 * - `models`: `{ slot: 'global' }` (last installed global weights and version) and
 *   `{ slot: 'local' }` (user vector, locally fine-tuned weights);
 * - `meta`: small numbers keyed by name (`lastTrainedAt`, `eventsDropped`);
 * - `rounds`: rounds this device took part in, keyed by `[model, roundId]`.
 *
 * Version 2 (personalization):
 * - `decisions`: the ranking decision log (`protocol/ranking.ts` `DecisionRecord`), keyed by
 *   `id`; index `by-at` (oldest-first pruning, newest-first reads);
 * - `settings`: personalization settings under the key `personalization` (paused, consent).
 *
 * To change the schema: bump `DB_VERSION` and append a migration from the previous version.
 * Never edit a shipped migration: devices run every step from their version up, in order.
 */
import type { DBSchema, IDBPDatabase, IDBPTransaction, StoreNames } from 'idb'
import type { EventKind, InteractionEvent } from '../../protocol/events.ts'
import type { PersonalizationSettings } from '../../protocol/personal-data.ts'
import type { DecisionRecord } from '../../protocol/ranking.ts'
import type { RoundParticipation } from '../api.ts'
import type { MetaKey, StoredGlobal, StoredLocal } from './device-store.ts'

/** A row of the `models` store, tagged by its key. */
export type ModelRecord = ({ readonly slot: 'global' } & StoredGlobal) | ({ readonly slot: 'local' } & StoredLocal)

export interface HearthDbSchema extends DBSchema {
  events: { key: number; value: InteractionEvent; indexes: { 'by-at': number; 'by-kind': EventKind } }
  models: { key: ModelRecord['slot']; value: ModelRecord }
  meta: { key: MetaKey; value: number }
  rounds: { key: [string, number]; value: RoundParticipation }
  decisions: { key: string; value: DecisionRecord; indexes: { 'by-at': number } }
  settings: { key: 'personalization'; value: PersonalizationSettings }
}

export type HearthDb = IDBPDatabase<HearthDbSchema>
type UpgradeTransaction = IDBPTransaction<HearthDbSchema, StoreNames<HearthDbSchema>[], 'versionchange'>
type Migration = (db: HearthDb, tx: UpgradeTransaction) => void

/** `MIGRATIONS[v]` takes a database from version v to v + 1. */
const MIGRATIONS: readonly Migration[] = [
  // 0 → 1: the first schema.
  (db) => {
    const events = db.createObjectStore('events', { autoIncrement: true })
    events.createIndex('by-at', 'at')
    events.createIndex('by-kind', 'kind')
    db.createObjectStore('models', { keyPath: 'slot' })
    db.createObjectStore('meta')
    db.createObjectStore('rounds', { keyPath: ['model', 'roundId'] })
  },
  // 1 → 2: the decision log and personalization settings; events and models are kept as they are.
  (db) => {
    const decisions = db.createObjectStore('decisions', { keyPath: 'id' })
    decisions.createIndex('by-at', 'at')
    db.createObjectStore('settings')
  },
]

/** The schema version this build writes. */
export const DB_VERSION = MIGRATIONS.length

/** The `upgrade` callback of `openDB`: runs every migration from `oldVersion` up to `newVersion`. */
export function upgradeDb(db: HearthDb, oldVersion: number, newVersion: number | null, tx: UpgradeTransaction): void {
  for (let version = oldVersion; version < (newVersion ?? DB_VERSION); version++) {
    const migrate = MIGRATIONS[version]
    if (migrate === undefined) throw new RangeError(`no migration from schema version ${version}`)
    migrate(db, tx)
  }
}
