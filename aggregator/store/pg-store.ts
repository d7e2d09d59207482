/**
 * The PostgreSQL store, for aggregators that share one database (DESIGN.md §5), through a `pg`
 * connection pool. Same contract and same rows as {@link SqliteStore}: the tables and columns
 * match, JSON lives in jsonb, weights in bytea, ids come from identity columns.
 *
 * Where SQLite checks before writing inside an exclusive transaction, this store lets the
 * constraints decide: under READ COMMITTED a check-then-insert would race with another
 * process, a unique or foreign key never does. Violations become the same catalogue errors.
 */
import pg from 'pg'
import type { CustomTypesConfig, PoolClient, PoolConfig, QueryResultRow } from 'pg'
import { HearthError } from '../../protocol/errors.ts'
import type { ModelSpec } from '../../protocol/model-spec.ts'
import { checkPublish, checkRoundless } from './checks.ts'
import { PG_MIGRATIONS, PG_SCHEMA_VERSION } from './pg-migrations.ts'
import {
  auditFromRow,
  auditToRow,
  ledgerFromRow,
  ledgerToRow,
  optimizerStateFromRow,
  optimizerStateToRow,
  roundFromRow,
  roundToRow,
  stateFromRow,
  stateToRow,
  versionFromRow,
  versionSummaryFromRow,
  versionToRow,
} from './sqlite-store.ts'
import type { AuditRow, LedgerRow, ModelRow, OptimizerStateRow, PrivacyStateRow, RoundRow, VersionRow, VersionSummaryRow } from './sqlite-store.ts'
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
  NewRound,
  OptimizerStateRecord,
  PrivacyCommit,
  RoundQuery,
  RoundRecord,
  VersionQuery,
} from './store.ts'

/**
 * The key of the transaction-level advisory lock that migrations hold, so that replicas
 * starting together migrate one after the other instead of racing on `CREATE TABLE`.
 * Arbitrary but fixed: the first 8 bytes of SHA-256("hearth.migrations"), big-endian int64.
 */
const MIGRATION_LOCK = '1683617089661127027'

/** Options of {@link PgStore.connect} beside the connection itself. */
export interface PgStoreOptions {
  /**
   * Called when an idle pooled connection fails (server restart, network cut). The pool has
   * already dropped it and the next query connects anew; default: ignored.
   */
  readonly onIdleError?: (error: Error) => void
}

/**
 * Parsers for this store's pool only (never pg's global ones, which other code may rely on):
 * bigint as a number, since every bigint here is an id or epoch milliseconds, far below 2^53;
 * jsonb as its text, which the shared row mapping parses.
 */
const TYPES: CustomTypesConfig = {
  getTypeParser: (oid, format) => {
    if (oid === pg.types.builtins.INT8) return parseSafeInteger
    if (oid === pg.types.builtins.JSONB) return (text: string) => text
    return pg.types.getTypeParser(oid, format)
  },
}

/** PostgreSQL implementation of {@link AggregatorStore}. */
export class PgStore implements AggregatorStore {
  readonly #pool: pg.Pool
  #closed: Promise<void> | undefined

  private constructor(pool: pg.Pool) {
    this.#pool = pool
  }

  /**
   * Connects to `connection` (a `postgres://` URL or a pool configuration) and brings the
   * schema up to date. Tables live in the connection's `search_path` (its first schema).
   * Refuses a database written by a newer build (`HEARTH_ERR_INVALID_CONFIG`).
   */
  static async connect(connection: string | PoolConfig, options: PgStoreOptions = {}): Promise<PgStore> {
    const config: PoolConfig = typeof connection === 'string' ? { connectionString: connection } : connection
    const pool = new pg.Pool({ ...config, types: TYPES })
    pool.on('error', options.onIdleError ?? (() => {}))
    const store = new PgStore(pool)
    try {
      await store.#transaction(migrate)
      return store
    } catch (error) {
      await store.close()
      throw error
    }
  }

  async getModel(name: string): Promise<ModelRecord | undefined> {
    const row = await this.#one<ModelRow>('SELECT name, spec, created_at FROM models WHERE name = $1', [name])
    return row === undefined ? undefined : { name: row.name, spec: JSON.parse(row.spec) as ModelSpec, createdAt: row.created_at }
  }

  async createModel(model: ModelRecord, initial: ModelVersionRecord): Promise<void> {
    if (initial.model !== model.name) throw new RangeError(`initial version belongs to ${initial.model}, not ${model.name}`)
    await this.#transaction(async (client) => {
      const row: ModelRow = { name: model.name, spec: JSON.stringify(model.spec), created_at: model.createdAt }
      await insert(client, 'models', row).catch(
        constraintError({ models_pkey: () => new HearthError('HEARTH_ERR_INVALID_CONFIG', `model ${model.name} already exists`) }),
      )
      await insertVersion(client, initial)
    })
  }

  async latestVersion(model: string): Promise<ModelVersionRecord | undefined> {
    const row = await this.#one<VersionRow>('SELECT * FROM model_versions WHERE model = $1 ORDER BY version DESC LIMIT 1', [model])
    return row === undefined ? undefined : versionFromRow(row)
  }

  async getVersion(model: string, version: number): Promise<ModelVersionRecord | undefined> {
    const row = await this.#one<VersionRow>('SELECT * FROM model_versions WHERE model = $1 AND version = $2', [model, version])
    return row === undefined ? undefined : versionFromRow(row)
  }

  async listVersions(query: VersionQuery): Promise<ModelVersionSummary[]> {
    const { rows } = await this.#pool.query<VersionSummaryRow>(
      `SELECT model, version, sha256, created_at, round_id FROM model_versions
       WHERE model = $1 AND ($2::integer IS NULL OR version < $2)
       ORDER BY version DESC LIMIT $3`,
      [query.model, query.before ?? null, query.limit],
    )
    return rows.map(versionSummaryFromRow)
  }

  async publishVersion(version: ModelVersionRecord, audit: NewAuditEntry): Promise<AuditEntry> {
    checkRoundless(version)
    return this.#transaction(async (client) => {
      await insertVersion(client, version)
      return appendAudit(client, audit)
    })
  }

  async createRound(round: NewRound): Promise<RoundRecord> {
    const { rows } = await insert(this.#pool, 'rounds', roundToRow(round), 'RETURNING id').catch(
      constraintError({ rounds_model_fkey: () => new HearthError('HEARTH_ERR_UNKNOWN_MODEL', round.model) }),
    )
    return { ...round, id: (rows[0] as { id: number }).id }
  }

  async updateRound(round: RoundRecord): Promise<void> {
    await updateRound(this.#pool, round)
  }

  async publishRound(round: RoundRecord, version: ModelVersionRecord, privacy?: PrivacyCommit, optimizer?: OptimizerStateRecord): Promise<void> {
    checkPublish(round, version, privacy, optimizer)
    await this.#transaction(async (client) => {
      await insertVersion(client, version)
      await updateRound(client, round)
      if (optimizer !== undefined) await insert(client, 'optimizer_state', optimizerStateToRow(optimizer))
      if (privacy === undefined) return
      await insert(client, 'privacy_ledger', ledgerToRow(privacy.entry)).catch(
        constraintError({
          privacy_ledger_round_key: () => new HearthError('HEARTH_ERR_ROUND_FAILED', `the ledger already holds round ${round.id}`),
        }),
      )
      await setPrivacyState(client, privacy.state)
    })
  }

  async getOptimizerState(model: string, version: number): Promise<OptimizerStateRecord | undefined> {
    const row = await this.#one<OptimizerStateRow>('SELECT * FROM optimizer_state WHERE model = $1 AND version = $2', [model, version])
    return row === undefined ? undefined : optimizerStateFromRow(row)
  }

  async getRound(id: number): Promise<RoundRecord | undefined> {
    const row = await this.#one<RoundRow>('SELECT * FROM rounds WHERE id = $1', [id])
    return row === undefined ? undefined : roundFromRow(row)
  }

  async listRounds(query: RoundQuery): Promise<RoundRecord[]> {
    const { rows } = await this.#pool.query<RoundRow>(
      `SELECT * FROM rounds
       WHERE ($1::text IS NULL OR model = $1) AND ($2::bigint IS NULL OR id < $2)
       ORDER BY id DESC LIMIT $3`,
      [query.model ?? null, query.before ?? null, query.limit],
    )
    return rows.map(roundFromRow)
  }

  async lastRoundId(): Promise<number> {
    const row = await this.#one<{ id: number }>('SELECT coalesce(max(id), 0) AS id FROM rounds', [])
    return row?.id ?? 0
  }

  async abortUnfinishedRounds(reason: string, at: number): Promise<number[]> {
    // One statement is one transaction: every unfinished round is aborted, or none is.
    const { rows } = await this.#pool.query<{ id: number }>(
      `UPDATE rounds SET outcome = 'aborted', stage = 'done', reason = $1, closed_at = $2
       WHERE outcome IS NULL RETURNING id`,
      [reason, at],
    )
    return rows.map((row) => row.id).sort((a, b) => a - b)
  }

  async listLedger(model: string): Promise<LedgerEntry[]> {
    const { rows } = await this.#pool.query<LedgerRow>('SELECT * FROM privacy_ledger WHERE model = $1 ORDER BY id', [model])
    return rows.map(ledgerFromRow)
  }

  async getPrivacyState(model: string): Promise<ModelPrivacyState | undefined> {
    const row = await this.#one<PrivacyStateRow>('SELECT * FROM privacy_state WHERE model = $1', [model])
    return row === undefined ? undefined : stateFromRow(row)
  }

  async setPrivacyState(state: ModelPrivacyState): Promise<void> {
    await setPrivacyState(this.#pool, state)
  }

  async appendAudit(entry: NewAuditEntry): Promise<AuditEntry> {
    return appendAudit(this.#pool, entry)
  }

  async listAudit(query: AuditQuery): Promise<AuditEntry[]> {
    const { rows } = await this.#pool.query<AuditRow>(
      'SELECT * FROM audit_log WHERE ($1::bigint IS NULL OR id < $1) ORDER BY id DESC LIMIT $2',
      [query.before ?? null, query.limit],
    )
    return rows.map(auditFromRow)
  }

  /** Ends the pool once its queries finish. Idempotent. */
  async close(): Promise<void> {
    this.#closed ??= this.#pool.end()
    await this.#closed
  }

  async #one<R extends QueryResultRow>(text: string, values: readonly unknown[]): Promise<R | undefined> {
    const { rows } = await this.#pool.query<R>(text, [...values])
    return rows[0]
  }

  /** Runs `fn` in a transaction on one pooled connection: COMMIT if it resolves, else ROLLBACK. */
  async #transaction<T>(fn: (client: PoolClient) => Promise<T>): Promise<T> {
    const client = await this.#pool.connect()
    let broken: Error | undefined
    try {
      // Whatever the server's default: each statement must see what committed before it, e.g.
      // the schema another process migrated while this one waited for the migration lock.
      await client.query('BEGIN ISOLATION LEVEL READ COMMITTED')
      const result = await fn(client)
      await client.query('COMMIT')
      return result
    } catch (error) {
      try {
        await client.query('ROLLBACK')
      } catch (rollbackError) {
        // The connection is unusable: release it destroyed rather than back into the pool.
        broken = rollbackError as Error
      }
      throw error
    } finally {
      client.release(broken)
    }
  }
}

/** What both a pool and a checked-out client can do. */
type Queryable = Pick<pg.Pool, 'query'>

async function migrate(client: PoolClient): Promise<void> {
  // Held until COMMIT: a second process waits here, then finds the schema current.
  await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK])
  // Looked up first: CREATE TABLE IF NOT EXISTS needs the CREATE privilege even when the table
  // exists, and a role without it may still run an up-to-date schema.
  const { rows: found } = await client.query<{ exists: boolean }>("SELECT to_regclass('hearth_schema_migrations') IS NOT NULL AS exists")
  if (found[0]?.exists !== true) {
    await client.query(`CREATE TABLE hearth_schema_migrations (
      version     integer PRIMARY KEY,
      description text NOT NULL,
      applied_at  timestamptz NOT NULL DEFAULT now()
    )`)
  }
  const { rows } = await client.query<{ version: number }>('SELECT coalesce(max(version), 0) AS version FROM hearth_schema_migrations')
  const current = rows[0]?.version ?? 0
  if (current > PG_SCHEMA_VERSION) {
    throw new HearthError(
      'HEARTH_ERR_INVALID_CONFIG',
      `the database schema is version ${current}, newer than this build understands (${PG_SCHEMA_VERSION})`,
    )
  }
  // PostgreSQL's DDL is transactional: the migrations and their rows commit together.
  for (const migration of PG_MIGRATIONS) {
    if (migration.version <= current) continue
    await client.query(migration.sql)
    await client.query('INSERT INTO hearth_schema_migrations (version, description) VALUES ($1, $2)', [migration.version, migration.description])
  }
}

/** `INSERT INTO table (keys of row) VALUES (...)`, with `suffix` (e.g. `RETURNING id`). */
function insert(db: Queryable, table: string, row: object, suffix = ''): Promise<pg.QueryResult> {
  const columns = Object.keys(row)
  const placeholders = columns.map((_, i) => `$${i + 1}`)
  return db.query(`INSERT INTO ${table} (${columns.join(', ')}) VALUES (${placeholders.join(', ')}) ${suffix}`, Object.values(row))
}

async function insertVersion(db: Queryable, version: ModelVersionRecord): Promise<void> {
  await insert(db, 'model_versions', versionToRow(version)).catch(
    constraintError({
      model_versions_pkey: () => new HearthError('HEARTH_ERR_ROUND_FAILED', `model ${version.model} already has version ${version.version}`),
      model_versions_model_fkey: () => new HearthError('HEARTH_ERR_UNKNOWN_MODEL', version.model),
      model_versions_round_fkey: () => new HearthError('HEARTH_ERR_UNKNOWN_ROUND', `round ${version.roundId} is not stored`),
    }),
  )
}

async function appendAudit(db: Queryable, entry: NewAuditEntry): Promise<AuditEntry> {
  const { rows } = await insert(db, 'audit_log', auditToRow(entry), 'RETURNING *')
  return auditFromRow(rows[0] as AuditRow)
}

async function updateRound(db: Queryable, round: RoundRecord): Promise<void> {
  const row = roundToRow(round)
  const columns = Object.keys(row)
  const { rowCount } = await db.query(
    `UPDATE rounds SET (${columns.join(', ')}) = (${columns.map((_, i) => `$${i + 2}`).join(', ')}) WHERE id = $1`,
    [round.id, ...Object.values(row)],
  )
  if (rowCount !== 1) throw new HearthError('HEARTH_ERR_UNKNOWN_ROUND', `round ${round.id} is not stored`)
}

async function setPrivacyState(db: Queryable, state: ModelPrivacyState): Promise<void> {
  const row = stateToRow(state)
  await db
    .query(
      `INSERT INTO privacy_state (model, clip_norm, refusal) VALUES ($1, $2, $3)
       ON CONFLICT (model) DO UPDATE SET clip_norm = excluded.clip_norm, refusal = excluded.refusal`,
      [row.model, row.clip_norm, row.refusal],
    )
    .catch(constraintError({ privacy_state_model_fkey: () => new HearthError('HEARTH_ERR_UNKNOWN_MODEL', state.model) }))
}

/**
 * A rejection handler that replaces PostgreSQL's violation of a named constraint with the
 * catalogue error made for it, and rethrows anything else unchanged.
 */
function constraintError(replacements: Readonly<Record<string, () => HearthError>>): (error: unknown) => never {
  return (error: unknown) => {
    if (error instanceof pg.DatabaseError && error.constraint !== undefined && Object.hasOwn(replacements, error.constraint)) {
      throw (replacements[error.constraint] as () => HearthError)()
    }
    throw error
  }
}

function parseSafeInteger(text: string): number {
  const value = Number(text)
  if (!Number.isSafeInteger(value)) throw new RangeError(`bigint ${text} does not fit a JavaScript number`)
  return value
}
