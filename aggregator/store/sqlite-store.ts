/**
 * The embedded store: one SQLite file (`aggregator.db` under the data directory) through
 * better-sqlite3. better-sqlite3 is synchronous; each call is short (one indexed statement or
 * one small transaction), so running it on the event loop is cheaper than a thread hop. The
 * methods are `async` only to satisfy {@link AggregatorStore}.
 */
import Database from 'better-sqlite3'
import { HearthError, isErrorCode } from '../../protocol/errors.ts'
import type { ErrorCode } from '../../protocol/errors.ts'
import type { RoundOutcome, RoundStage } from '../../protocol/messages.ts'
import type { ModelSpec } from '../../protocol/model-spec.ts'
import { bytesToWeights, weightsToBytes } from '../models/weights.ts'
import { checkPublish, checkRoundless } from './checks.ts'
import { MIGRATIONS, SCHEMA_VERSION } from './migrations.ts'
import type {
  AggregatorStore,
  AuditEntry,
  AuditQuery,
  LedgerEntry,
  ModelPrivacyState,
  ModelRecord,
  ModelVersionRecord,
  ModelVersionSummary,
  NewAuditEntry,
  NewLedgerEntry,
  NewRound,
  OptimizerStateRecord,
  PrivacyCommit,
  PrivacyRefusal,
  RejectionCounts,
  RoundConfig,
  RoundPrivacyRecord,
  RoundSecAggRecord,
  RoundQuery,
  RoundRecord,
  VersionQuery,
} from './store.ts'

/** The database file name inside the data directory. */
export const DATABASE_FILE = 'aggregator.db'

// The row shapes and their mapping below are shared with PgStore, which reads jsonb as text and
// bigint as number so that its rows have exactly these shapes.

export interface ModelRow {
  name: string
  spec: string
  created_at: number
}

export interface VersionRow {
  model: string
  version: number
  weights: Buffer
  sha256: string
  created_at: number
  round_id: number | null
}

export interface RoundRow {
  id: number
  model: string
  base_version: number
  stage: string
  config: string
  created_at: number
  selected_at: number | null
  upload_deadline: number | null
  closed_at: number | null
  eligible: number
  participants: number
  uploads_accepted: number
  dropped: number
  rejections: string
  outcome: string | null
  reason: string | null
  published_version: number | null
  privacy: string | null
  secagg: string | null
}

export interface LedgerRow {
  id: number
  model: string
  round_id: number
  version: number
  recorded_at: number
  mode: string
  epsilon: number
  delta: number
  entry: string
}

export type VersionSummaryRow = Omit<VersionRow, 'weights'>

export interface AuditRow {
  id: number
  at: number
  actor: string
  action: string
  subject: string
  details: string
}

export interface PrivacyStateRow {
  model: string
  clip_norm: number | null
  refusal: string | null
}

export interface OptimizerStateRow {
  model: string
  version: number
  optimizer: string
  rounds: number
  m: Buffer
  v: Buffer
}

const ROUND_COLUMNS = `model, base_version, stage, config, created_at, selected_at, upload_deadline, closed_at,
  eligible, participants, uploads_accepted, dropped, rejections, outcome, reason, published_version, privacy, secagg`
const ROUND_VALUES = `@model, @base_version, @stage, @config, @created_at, @selected_at, @upload_deadline, @closed_at,
  @eligible, @participants, @uploads_accepted, @dropped, @rejections, @outcome, @reason, @published_version, @privacy, @secagg`

/** SQLite implementation of {@link AggregatorStore}. */
export class SqliteStore implements AggregatorStore {
  readonly #db: Database.Database
  readonly #statements

  private constructor(db: Database.Database) {
    this.#db = db
    this.#statements = {
      getModel: db.prepare<[string], ModelRow>('SELECT name, spec, created_at FROM models WHERE name = ?'),
      insertModel: db.prepare('INSERT INTO models (name, spec, created_at) VALUES (@name, @spec, @created_at)'),
      insertVersion: db.prepare(
        `INSERT INTO model_versions (model, version, weights, sha256, created_at, round_id)
         VALUES (@model, @version, @weights, @sha256, @created_at, @round_id)`,
      ),
      latestVersion: db.prepare<[string], VersionRow>(
        'SELECT * FROM model_versions WHERE model = ? ORDER BY version DESC LIMIT 1',
      ),
      getVersion: db.prepare<[string, number], VersionRow>('SELECT * FROM model_versions WHERE model = ? AND version = ?'),
      listVersions: db.prepare<{ model: string; before: number | null; limit: number }, VersionSummaryRow>(
        `SELECT model, version, sha256, created_at, round_id FROM model_versions
         WHERE model = @model AND (@before IS NULL OR version < @before)
         ORDER BY version DESC LIMIT @limit`,
      ),
      insertRound: db.prepare(`INSERT INTO rounds (${ROUND_COLUMNS}) VALUES (${ROUND_VALUES})`),
      updateRound: db.prepare(
        `UPDATE rounds SET (${ROUND_COLUMNS}) = (${ROUND_VALUES}) WHERE id = @id`,
      ),
      getRound: db.prepare<[number], RoundRow>('SELECT * FROM rounds WHERE id = ?'),
      listRounds: db.prepare<{ model: string | null; before: number | null; limit: number }, RoundRow>(
        `SELECT * FROM rounds
         WHERE (@model IS NULL OR model = @model) AND (@before IS NULL OR id < @before)
         ORDER BY id DESC LIMIT @limit`,
      ),
      lastRoundId: db.prepare<[], { id: number | null }>('SELECT max(id) AS id FROM rounds'),
      unfinished: db.prepare<[], { id: number }>('SELECT id FROM rounds WHERE outcome IS NULL ORDER BY id'),
      abortRound: db.prepare(
        `UPDATE rounds SET outcome = 'aborted', stage = 'done', reason = @reason, closed_at = @at
         WHERE id = @id AND outcome IS NULL`,
      ),
      insertLedger: db.prepare(
        `INSERT INTO privacy_ledger (model, round_id, version, recorded_at, mode, epsilon, delta, entry)
         VALUES (@model, @round_id, @version, @recorded_at, @mode, @epsilon, @delta, @entry)`,
      ),
      insertOptimizerState: db.prepare<OptimizerStateRow>(
        'INSERT INTO optimizer_state (model, version, optimizer, rounds, m, v) VALUES (@model, @version, @optimizer, @rounds, @m, @v)',
      ),
      getOptimizerState: db.prepare<[string, number], OptimizerStateRow>('SELECT * FROM optimizer_state WHERE model = ? AND version = ?'),
      listLedger: db.prepare<[string], LedgerRow>('SELECT * FROM privacy_ledger WHERE model = ? ORDER BY id'),
      getPrivacyState: db.prepare<[string], PrivacyStateRow>('SELECT * FROM privacy_state WHERE model = ?'),
      setPrivacyState: db.prepare(
        `INSERT INTO privacy_state (model, clip_norm, refusal) VALUES (@model, @clip_norm, @refusal)
         ON CONFLICT (model) DO UPDATE SET clip_norm = excluded.clip_norm, refusal = excluded.refusal`,
      ),
      insertAudit: db.prepare<Omit<AuditRow, 'id'>, AuditRow>(
        `INSERT INTO audit_log (at, actor, action, subject, details)
         VALUES (@at, @actor, @action, @subject, @details) RETURNING *`,
      ),
      listAudit: db.prepare<{ before: number | null; limit: number }, AuditRow>(
        'SELECT * FROM audit_log WHERE (@before IS NULL OR id < @before) ORDER BY id DESC LIMIT @limit',
      ),
    }
  }

  /**
   * Opens an existing database for reading only (the ledger export of the CLI): never creates,
   * migrates or writes. Refuses a schema other than this build's (`HEARTH_ERR_INVALID_CONFIG`).
   */
  static openReadOnly(file: string): SqliteStore {
    const db = new Database(file, { readonly: true, fileMustExist: true })
    try {
      const version = db.pragma('user_version', { simple: true }) as number
      if (version !== SCHEMA_VERSION) {
        throw new HearthError(
          'HEARTH_ERR_INVALID_CONFIG',
          `the database schema is version ${version}, this build reads version ${SCHEMA_VERSION}; start this build's aggregator on it once to migrate`,
        )
      }
      return new SqliteStore(db)
    } catch (error) {
      db.close()
      throw error
    }
  }

  /**
   * Opens (creating if missing) the database at `file` and brings its schema up to date.
   * Refuses a database written by a newer build (`HEARTH_ERR_INVALID_CONFIG`).
   */
  static open(file: string): SqliteStore {
    const db = new Database(file)
    try {
      // WAL: readers never block the writer, and a crash never corrupts the file
      // (SQLite docs, "Write-Ahead Logging"). synchronous=FULL also makes each commit durable
      // across power loss; the engine keeps commits rare (stage changes, publishes, progress at
      // most every 250 ms: RoundEngine.persistProgress), so the fsync stays cheap.
      const mode = db.pragma('journal_mode = WAL', { simple: true })
      if (mode !== 'wal') throw new HearthError('HEARTH_ERR_STORAGE', `could not enable WAL mode on ${file} (got ${String(mode)})`)
      db.pragma('synchronous = FULL')
      db.pragma('foreign_keys = ON')
      db.pragma('busy_timeout = 5000')
      migrate(db)
      return new SqliteStore(db)
    } catch (error) {
      db.close()
      throw error
    }
  }

  async getModel(name: string): Promise<ModelRecord | undefined> {
    const row = this.#statements.getModel.get(name)
    return row === undefined ? undefined : { name: row.name, spec: JSON.parse(row.spec) as ModelSpec, createdAt: row.created_at }
  }

  async createModel(model: ModelRecord, initial: ModelVersionRecord): Promise<void> {
    if (initial.model !== model.name) throw new RangeError(`initial version belongs to ${initial.model}, not ${model.name}`)
    this.#transaction(() => {
      if (this.#statements.getModel.get(model.name) !== undefined) {
        throw new HearthError('HEARTH_ERR_INVALID_CONFIG', `model ${model.name} already exists`)
      }
      this.#statements.insertModel.run({ name: model.name, spec: JSON.stringify(model.spec), created_at: model.createdAt })
      this.#insertVersion(initial)
    })
  }

  async latestVersion(model: string): Promise<ModelVersionRecord | undefined> {
    const row = this.#statements.latestVersion.get(model)
    return row === undefined ? undefined : versionFromRow(row)
  }

  async getVersion(model: string, version: number): Promise<ModelVersionRecord | undefined> {
    const row = this.#statements.getVersion.get(model, version)
    return row === undefined ? undefined : versionFromRow(row)
  }

  async listVersions(query: VersionQuery): Promise<ModelVersionSummary[]> {
    return this.#statements.listVersions
      .all({ model: query.model, before: query.before ?? null, limit: query.limit })
      .map(versionSummaryFromRow)
  }

  async publishVersion(version: ModelVersionRecord, audit: NewAuditEntry): Promise<AuditEntry> {
    checkRoundless(version)
    return this.#transaction(() => {
      if (this.#statements.getModel.get(version.model) === undefined) throw new HearthError('HEARTH_ERR_UNKNOWN_MODEL', version.model)
      if (this.#statements.getVersion.get(version.model, version.version) !== undefined) {
        throw new HearthError('HEARTH_ERR_ROUND_FAILED', `model ${version.model} already has version ${version.version}`)
      }
      this.#insertVersion(version)
      return this.#appendAudit(audit)
    })
  }

  async createRound(round: NewRound): Promise<RoundRecord> {
    if (this.#statements.getModel.get(round.model) === undefined) throw new HearthError('HEARTH_ERR_UNKNOWN_MODEL', round.model)
    const info = this.#statements.insertRound.run(roundToRow(round))
    return { ...round, id: Number(info.lastInsertRowid) }
  }

  async updateRound(round: RoundRecord): Promise<void> {
    const info = this.#statements.updateRound.run({ ...roundToRow(round), id: round.id })
    if (info.changes !== 1) throw new HearthError('HEARTH_ERR_UNKNOWN_ROUND', `round ${round.id} is not stored`)
  }

  async publishRound(round: RoundRecord, version: ModelVersionRecord, privacy?: PrivacyCommit, optimizer?: OptimizerStateRecord): Promise<void> {
    checkPublish(round, version, privacy, optimizer)
    this.#transaction(() => {
      if (this.#statements.getVersion.get(version.model, version.version) !== undefined) {
        throw new HearthError('HEARTH_ERR_ROUND_FAILED', `model ${version.model} already has version ${version.version}`)
      }
      this.#insertVersion(version)
      const info = this.#statements.updateRound.run({ ...roundToRow(round), id: round.id })
      if (info.changes !== 1) throw new HearthError('HEARTH_ERR_UNKNOWN_ROUND', `round ${round.id} is not stored`)
      if (privacy !== undefined) {
        this.#statements.insertLedger.run(ledgerToRow(privacy.entry))
        this.#statements.setPrivacyState.run(stateToRow(privacy.state))
      }
      if (optimizer !== undefined) this.#statements.insertOptimizerState.run(optimizerStateToRow(optimizer))
    })
  }

  async getOptimizerState(model: string, version: number): Promise<OptimizerStateRecord | undefined> {
    const row = this.#statements.getOptimizerState.get(model, version)
    return row === undefined ? undefined : optimizerStateFromRow(row)
  }

  async getRound(id: number): Promise<RoundRecord | undefined> {
    const row = this.#statements.getRound.get(id)
    return row === undefined ? undefined : roundFromRow(row)
  }

  async listRounds(query: RoundQuery): Promise<RoundRecord[]> {
    return this.#statements.listRounds
      .all({ model: query.model ?? null, before: query.before ?? null, limit: query.limit })
      .map(roundFromRow)
  }

  async lastRoundId(): Promise<number> {
    return this.#statements.lastRoundId.get()?.id ?? 0
  }

  async abortUnfinishedRounds(reason: string, at: number): Promise<number[]> {
    return this.#transaction(() => {
      const ids = this.#statements.unfinished.all().map((row) => row.id)
      for (const id of ids) this.#statements.abortRound.run({ id, reason, at })
      return ids
    })
  }

  async listLedger(model: string): Promise<LedgerEntry[]> {
    return this.#statements.listLedger.all(model).map(ledgerFromRow)
  }

  async getPrivacyState(model: string): Promise<ModelPrivacyState | undefined> {
    const row = this.#statements.getPrivacyState.get(model)
    return row === undefined ? undefined : stateFromRow(row)
  }

  async setPrivacyState(state: ModelPrivacyState): Promise<void> {
    if (this.#statements.getModel.get(state.model) === undefined) throw new HearthError('HEARTH_ERR_UNKNOWN_MODEL', state.model)
    this.#statements.setPrivacyState.run(stateToRow(state))
  }

  async appendAudit(entry: NewAuditEntry): Promise<AuditEntry> {
    return this.#appendAudit(entry)
  }

  async listAudit(query: AuditQuery): Promise<AuditEntry[]> {
    return this.#statements.listAudit.all({ before: query.before ?? null, limit: query.limit }).map(auditFromRow)
  }

  async close(): Promise<void> {
    if (this.#db.open) this.#db.close()
  }

  #insertVersion(version: ModelVersionRecord): void {
    this.#statements.insertVersion.run(versionToRow(version))
  }

  #appendAudit(entry: NewAuditEntry): AuditEntry {
    const row = this.#statements.insertAudit.get(auditToRow(entry))
    if (row === undefined) throw new HearthError('HEARTH_ERR_STORAGE', 'the audit entry was not stored')
    return auditFromRow(row)
  }

  #transaction<T>(fn: () => T): T {
    return this.#db.transaction(fn).immediate()
  }
}

function migrate(db: Database.Database): void {
  const current = db.pragma('user_version', { simple: true }) as number
  if (current > SCHEMA_VERSION) {
    throw new HearthError(
      'HEARTH_ERR_INVALID_CONFIG',
      `the database schema is version ${current}, newer than this build understands (${SCHEMA_VERSION})`,
    )
  }
  for (const migration of MIGRATIONS) {
    if (migration.version <= current) continue
    db.transaction(() => {
      db.exec(migration.sql)
      // user_version lives in the database header, so it commits or rolls back with the DDL.
      db.pragma(`user_version = ${migration.version}`)
    }).immediate()
  }
}

export function versionToRow(version: ModelVersionRecord): VersionRow {
  return {
    model: version.model,
    version: version.version,
    weights: Buffer.from(weightsToBytes(version.weights).buffer),
    sha256: version.sha256,
    created_at: version.createdAt,
    round_id: version.roundId,
  }
}

export function versionFromRow(row: VersionRow): ModelVersionRecord {
  return {
    model: row.model,
    version: row.version,
    weights: bytesToWeights(row.weights),
    sha256: row.sha256,
    createdAt: row.created_at,
    roundId: row.round_id,
  }
}

export function versionSummaryFromRow(row: VersionSummaryRow): ModelVersionSummary {
  return { model: row.model, version: row.version, sha256: row.sha256, createdAt: row.created_at, roundId: row.round_id }
}

export function auditToRow(entry: NewAuditEntry): Omit<AuditRow, 'id'> {
  return { at: entry.at, actor: entry.actor, action: entry.action, subject: entry.subject, details: JSON.stringify(entry.details) }
}

export function auditFromRow(row: AuditRow): AuditEntry {
  return {
    id: row.id,
    at: row.at,
    actor: row.actor,
    action: row.action,
    subject: row.subject,
    details: JSON.parse(row.details) as AuditEntry['details'],
  }
}

export function roundToRow(round: NewRound): Omit<RoundRow, 'id'> {
  return {
    model: round.model,
    base_version: round.baseVersion,
    stage: round.stage,
    config: JSON.stringify(round.config),
    created_at: round.createdAt,
    selected_at: round.selectedAt,
    upload_deadline: round.uploadDeadline,
    closed_at: round.closedAt,
    eligible: round.eligible,
    participants: round.participants,
    uploads_accepted: round.uploadsAccepted,
    dropped: round.dropped,
    rejections: JSON.stringify(round.rejections),
    outcome: round.outcome,
    reason: round.reason,
    published_version: round.publishedVersion,
    privacy: round.privacy === null ? null : JSON.stringify(round.privacy),
    secagg: round.secagg === null ? null : JSON.stringify(round.secagg),
  }
}

export function roundFromRow(row: RoundRow): RoundRecord {
  return {
    id: row.id,
    model: row.model,
    baseVersion: row.base_version,
    stage: row.stage as RoundStage,
    config: JSON.parse(row.config) as RoundConfig,
    createdAt: row.created_at,
    selectedAt: row.selected_at,
    uploadDeadline: row.upload_deadline,
    closedAt: row.closed_at,
    eligible: row.eligible,
    participants: row.participants,
    uploadsAccepted: row.uploads_accepted,
    dropped: row.dropped,
    rejections: parseRejections(row.rejections),
    outcome: row.outcome as RoundOutcome | null,
    reason: row.reason,
    publishedVersion: row.published_version,
    privacy: row.privacy === null ? null : (JSON.parse(row.privacy) as RoundPrivacyRecord),
    secagg: row.secagg === null ? null : (JSON.parse(row.secagg) as RoundSecAggRecord),
  }
}

export function ledgerToRow(entry: NewLedgerEntry): Omit<LedgerRow, 'id'> {
  const { model, roundId, version, recordedAt, mode, epsilon, budget, ...rest } = entry
  return {
    model,
    round_id: roundId,
    version,
    recorded_at: recordedAt,
    mode,
    epsilon,
    delta: budget.delta,
    entry: JSON.stringify({ ...rest, budget }),
  }
}

export function ledgerFromRow(row: LedgerRow): LedgerEntry {
  const rest = JSON.parse(row.entry) as Omit<LedgerEntry, 'id' | 'model' | 'roundId' | 'version' | 'recordedAt' | 'mode' | 'epsilon'>
  return {
    ...rest,
    id: row.id,
    model: row.model,
    roundId: row.round_id,
    version: row.version,
    recordedAt: row.recorded_at,
    mode: row.mode as LedgerEntry['mode'],
    epsilon: row.epsilon,
  }
}

export function stateToRow(state: ModelPrivacyState): PrivacyStateRow {
  return { model: state.model, clip_norm: state.clipNorm, refusal: state.refusal === null ? null : JSON.stringify(state.refusal) }
}

export function stateFromRow(row: PrivacyStateRow): ModelPrivacyState {
  return { model: row.model, clipNorm: row.clip_norm, refusal: row.refusal === null ? null : (JSON.parse(row.refusal) as PrivacyRefusal) }
}

export function optimizerStateToRow(state: OptimizerStateRecord): OptimizerStateRow {
  return { model: state.model, version: state.version, optimizer: state.optimizer, rounds: state.rounds, m: float64Bytes(state.m), v: float64Bytes(state.v) }
}

export function optimizerStateFromRow(row: OptimizerStateRow): OptimizerStateRecord {
  return { model: row.model, version: row.version, optimizer: row.optimizer, rounds: row.rounds, m: bytesFloat64(row.m), v: bytesFloat64(row.v) }
}

/** `values` as little-endian float64 bytes: exact, so restored moments equal the stored ones bit for bit. */
function float64Bytes(values: Float64Array): Buffer {
  const bytes = Buffer.alloc(values.length * 8)
  for (let i = 0; i < values.length; i++) bytes.writeDoubleLE(values[i] as number, 8 * i)
  return bytes
}

function bytesFloat64(bytes: Uint8Array): Float64Array {
  if (bytes.byteLength % 8 !== 0) throw new HearthError('HEARTH_ERR_STORAGE', `optimizer moments must be a multiple of 8 bytes, got ${bytes.byteLength}`)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  return Float64Array.from({ length: bytes.byteLength / 8 }, (_, i) => view.getFloat64(8 * i, true))
}

/** Keeps only catalogue codes with counts, so a hand-edited row cannot smuggle odd keys out. */
export function parseRejections(json: string): RejectionCounts {
  const parsed: unknown = JSON.parse(json)
  const counts: Partial<Record<ErrorCode, number>> = {}
  if (typeof parsed !== 'object' || parsed === null) return counts
  for (const [code, count] of Object.entries(parsed)) {
    if (isErrorCode(code) && Number.isSafeInteger(count) && (count as number) > 0) counts[code] = count as number
  }
  return counts
}
