/**
 * The SQLite schema, as an append-only list of migrations. The applied version is kept in
 * `PRAGMA user_version` (SQLite docs, "PRAGMA schema.user_version": an integer in the database
 * header that SQLite itself never uses), so a migration and the version bump commit together.
 *
 * Never edit a migration that has shipped; add the next one.
 */
export interface Migration {
  readonly version: number
  readonly description: string
  readonly sql: string
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'models, model versions and rounds',
    sql: `
      CREATE TABLE models (
        name        TEXT PRIMARY KEY,
        spec        TEXT NOT NULL,             -- ModelSpec as JSON
        created_at  INTEGER NOT NULL
      ) STRICT;

      -- AUTOINCREMENT so that a round id is never reused, even after a rollback: clients put
      -- round ids in their frames (SQLite docs, "Autoincrement").
      CREATE TABLE rounds (
        id                INTEGER PRIMARY KEY AUTOINCREMENT,
        model             TEXT NOT NULL REFERENCES models (name),
        base_version      INTEGER NOT NULL,
        stage             TEXT NOT NULL,
        config            TEXT NOT NULL,       -- RoundConfig as JSON
        created_at        INTEGER NOT NULL,
        selected_at       INTEGER,
        upload_deadline   INTEGER,
        closed_at         INTEGER,
        eligible          INTEGER NOT NULL DEFAULT 0,
        participants      INTEGER NOT NULL DEFAULT 0,
        uploads_accepted  INTEGER NOT NULL DEFAULT 0,
        dropped           INTEGER NOT NULL DEFAULT 0,
        rejections        TEXT NOT NULL DEFAULT '{}',  -- {code: count} as JSON
        outcome           TEXT CHECK (outcome IN ('published', 'aborted')),
        reason            TEXT,
        published_version INTEGER
      ) STRICT;
      CREATE INDEX rounds_by_model ON rounds (model, id);
      CREATE INDEX rounds_unfinished ON rounds (id) WHERE outcome IS NULL;

      -- Aggregates only: an individual client update is never written (DESIGN.md §3).
      CREATE TABLE model_versions (
        model       TEXT NOT NULL REFERENCES models (name),
        version     INTEGER NOT NULL,
        weights     BLOB NOT NULL,             -- little-endian float32, the Weights frame payload
        sha256      TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        round_id    INTEGER REFERENCES rounds (id),
        PRIMARY KEY (model, version)
      ) STRICT;
    `,
  },
  {
    version: 2,
    description: 'differential privacy: per-round parameters, the privacy ledger, per-model state',
    sql: `
      ALTER TABLE rounds ADD COLUMN privacy TEXT;  -- RoundPrivacyRecord as JSON; NULL without DP

      -- Append-only: one row per published DP round, written in the transaction that publishes
      -- its version. What an auditor replays into an RDP accountant.
      CREATE TABLE privacy_ledger (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        model        TEXT NOT NULL REFERENCES models (name),
        round_id     INTEGER NOT NULL UNIQUE REFERENCES rounds (id),
        version      INTEGER NOT NULL,
        recorded_at  INTEGER NOT NULL,
        mode         TEXT NOT NULL,
        epsilon      REAL NOT NULL,            -- cumulative, at delta
        delta        REAL NOT NULL,
        entry        TEXT NOT NULL,            -- the rest of the LedgerEntry as JSON
        FOREIGN KEY (model, version) REFERENCES model_versions (model, version)
      ) STRICT;
      CREATE INDEX privacy_ledger_by_model ON privacy_ledger (model, id);

      CREATE TABLE privacy_state (
        model      TEXT PRIMARY KEY REFERENCES models (name),
        clip_norm  REAL,                       -- moved by adaptive clipping; NULL: as configured
        refusal    TEXT                        -- PrivacyRefusal as JSON, or NULL
      ) STRICT;
    `,
  },
  {
    version: 3,
    description: 'secure aggregation: per-round parameters and group counts',
    sql: `
      -- RoundSecAggRecord as JSON (sizes and counts only); NULL for plain rounds. Shares and
      -- masked vectors are never written (DESIGN.md §3).
      ALTER TABLE rounds ADD COLUMN secagg TEXT;
    `,
  },
  {
    version: 4,
    description: 'the audit log: admin actions and round outcomes, append-only',
    sql: `
      -- Counts and hashes only: never an individual update or a client identity (DESIGN.md §3).
      CREATE TABLE audit_log (
        id       INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused (SQLite docs, "Autoincrement")
        at       INTEGER NOT NULL,
        actor    TEXT NOT NULL,
        action   TEXT NOT NULL,
        subject  TEXT NOT NULL,
        details  TEXT NOT NULL                        -- a JSON object
      ) STRICT;

      -- Append-only beyond the store's interface too: a hand-run UPDATE or DELETE is refused
      -- (SQLite docs, "CREATE TRIGGER", the RAISE() function).
      CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
      BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
      CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
      BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
    `,
  },
  {
    version: 5,
    description: "adaptive server optimizers: each version's moments",
    sql: `
      -- FedAdam/FedYogi/FedAdagrad's m and v after the round that published the version, written
      -- in the same transaction. Running averages of published aggregates, nothing per client.
      CREATE TABLE optimizer_state (
        model      TEXT NOT NULL,
        version    INTEGER NOT NULL,
        optimizer  TEXT NOT NULL,              -- ServerOptimizer.name, e.g. fedadam
        rounds     INTEGER NOT NULL,
        m          BLOB NOT NULL,              -- little-endian float64
        v          BLOB NOT NULL,
        PRIMARY KEY (model, version),
        FOREIGN KEY (model, version) REFERENCES model_versions (model, version)
      ) STRICT;
    `,
  },
]

/** The schema version this build writes. */
export const SCHEMA_VERSION = MIGRATIONS.reduce((v, m) => Math.max(v, m.version), 0)
