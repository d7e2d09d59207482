/**
 * The tables of cluster mode, beside the store's (`store/pg-migrations.ts`) and versioned on their
 * own (`hearth_cluster_migrations`): only databases that replicas share ever get them, and the
 * store's migration list stays the single-process schema. Same rules as the store's: append-only,
 * applied in one transaction under an advisory lock, never edited once shipped.
 *
 * What is written here, and why it is not private: a replica id (random per process), each
 * checked-in session's per-connection pseudonym (`ClientSession.id`, 128 random bits, never tied to
 * a device) and which replica holds it, and each secure-aggregation group's unmasked sum — an
 * aggregate of at least t clients, never an individual update (DESIGN.md §3, §4) — kept only
 * until the round ends.
 */
import type { PoolClient } from 'pg'
import { HearthError } from '../../protocol/errors.ts'
import type { Migration } from '../store/migrations.ts'

export const CLUSTER_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'replicas, their sessions, coordinator leases, and the groups of each cluster round',
    sql: `
      CREATE TABLE cluster_replicas (
        id            text CONSTRAINT cluster_replicas_pkey PRIMARY KEY,
        started_at    bigint NOT NULL,
        heartbeat_at  bigint NOT NULL
      );

      -- The pool the coordinator draws cohorts from. A replica's rows go with it (its heartbeat
      -- stopped, or it closed): its sockets went with the process.
      CREATE TABLE cluster_sessions (
        session    text CONSTRAINT cluster_sessions_pkey PRIMARY KEY,
        replica    text NOT NULL REFERENCES cluster_replicas (id) ON DELETE CASCADE,
        model      text NOT NULL REFERENCES models (name),
        joined_at  bigint NOT NULL
      );
      CREATE INDEX cluster_sessions_by_model ON cluster_sessions (model);

      -- Who last took each model's coordinator lease (the lease itself is an advisory lock): the
      -- next holder knows whose replica died with it.
      CREATE TABLE cluster_leases (
        model        text CONSTRAINT cluster_leases_pkey PRIMARY KEY REFERENCES models (name),
        replica      text NOT NULL,
        acquired_at  bigint NOT NULL
      );

      -- Which replica coordinates a round, and the quantization every group shares (one L).
      CREATE TABLE cluster_rounds (
        round_id      bigint CONSTRAINT cluster_rounds_pkey PRIMARY KEY REFERENCES rounds (id),
        model         text NOT NULL REFERENCES models (name),
        coordinator   text NOT NULL,
        max_summands  integer
      );

      -- One row per secure-aggregation group. No foreign key to the replica: a group outlives a
      -- replica that died, and then counts as dropped. sessions and sum are cleared when the
      -- round ends; record holds counts only (SecAggGroupRecord).
      CREATE TABLE cluster_groups (
        round_id   bigint NOT NULL REFERENCES cluster_rounds (round_id),
        group_id   integer NOT NULL,
        replica    text NOT NULL,
        sessions   text[] NOT NULL,
        settled    boolean NOT NULL DEFAULT false,
        sum        bytea,
        survivors  integer NOT NULL DEFAULT 0,
        record     jsonb,
        CONSTRAINT cluster_groups_pkey PRIMARY KEY (round_id, group_id)
      );
      CREATE INDEX cluster_groups_open ON cluster_groups (replica) WHERE NOT settled;
    `,
  },
]

/** The cluster schema version this build writes. */
export const CLUSTER_SCHEMA_VERSION = CLUSTER_MIGRATIONS.reduce((v, m) => Math.max(v, m.version), 0)

/**
 * Key of the transaction-level advisory lock held while migrating: the first 8 bytes of
 * SHA-256("hearth.cluster.migrations"), big-endian int64. Not the store's key, so each list
 * migrates under its own lock.
 */
const CLUSTER_MIGRATION_LOCK = '2613257078647892341'

/** Brings the cluster tables up to date, inside the caller's transaction. */
export async function migrateCluster(client: PoolClient): Promise<void> {
  await client.query('SELECT pg_advisory_xact_lock($1)', [CLUSTER_MIGRATION_LOCK])
  await client.query(`CREATE TABLE IF NOT EXISTS hearth_cluster_migrations (
    version     integer PRIMARY KEY,
    description text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
  )`)
  const { rows } = await client.query<{ version: number }>('SELECT coalesce(max(version), 0) AS version FROM hearth_cluster_migrations')
  const current = rows[0]?.version ?? 0
  if (current > CLUSTER_SCHEMA_VERSION) {
    throw new HearthError('HEARTH_ERR_INVALID_CONFIG', `the cluster tables are version ${current}, newer than this build understands (${CLUSTER_SCHEMA_VERSION})`)
  }
  for (const migration of CLUSTER_MIGRATIONS) {
    if (migration.version <= current) continue
    await client.query(migration.sql)
    await client.query('INSERT INTO hearth_cluster_migrations (version, description) VALUES ($1, $2)', [migration.version, migration.description])
  }
}
