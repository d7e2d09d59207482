/**
 * The cluster's shared state in PostgreSQL (tables in `cluster-schema.ts`), as typed queries:
 * replicas and their heartbeats, the sessions each one holds, the groups of each cluster round
 * and their sums. Round records, versions and the audit log stay with the store; this module only
 * adds what replicas need to split a round.
 *
 * Its own small pool: the store's is private to it, and cluster traffic (a heartbeat and a few
 * reads per second) should not queue behind a slow publish.
 */
import pg from 'pg'
import type { PoolClient } from 'pg'
import type { SecAggGroupRecord } from '../store/store.ts'
import { migrateCluster } from './cluster-schema.ts'

/** A session in the cluster-wide pool: its pseudonym and the replica holding its socket. */
export interface PooledSession {
  readonly session: string
  readonly replica: string
}

/** A group the coordinator assigned to one replica. */
export interface GroupAssignment {
  readonly roundId: number
  readonly groupId: number
  readonly replica: string
  /** Session pseudonyms, in the order that gives their indices 1..n. */
  readonly sessions: readonly string[]
}

/** A group this replica runs, with what it needs to start it. */
export interface AssignedGroup extends GroupAssignment {
  readonly model: string
  /** The largest group of the round: every group quantizes with the same L. */
  readonly maxSummands: number
}

/** A group of a round as the coordinator reads it back. */
export interface GroupState extends GroupAssignment {
  readonly settled: boolean
  /** The unmasked group sum in Z_{2^b}, when the group completed. */
  readonly sum: Uint32Array | null
  readonly survivors: number
  readonly record: SecAggGroupRecord | null
  /** Whether the replica running it still beats. */
  readonly replicaAlive: boolean
}

/** How a replica reports one of its groups. */
export interface GroupSettlement {
  readonly roundId: number
  readonly groupId: number
  readonly sum: Uint32Array | null
  readonly survivors: number
  readonly record: SecAggGroupRecord
}

interface GroupRow {
  round_id: number
  group_id: number
  replica: string
  sessions: string[]
  settled: boolean
  sum: Buffer | null
  survivors: number
  record: SecAggGroupRecord | null
  alive: boolean
}

export class ClusterDb {
  readonly #pool: pg.Pool
  /** The connection's first schema: advisory locks and notifications are database-wide. */
  readonly schema: string

  private constructor(pool: pg.Pool, schema: string) {
    this.#pool = pool
    this.schema = schema
  }

  /** Connects and brings the cluster tables up to date; the store's schema must exist. */
  static async connect(url: string, onIdleError: (error: Error) => void): Promise<ClusterDb> {
    const pool = new pg.Pool({ connectionString: url, max: 4 })
    pool.on('error', onIdleError)
    try {
      await transaction(pool, migrateCluster)
      const { rows } = await pool.query<{ schema: string }>('SELECT current_schema() AS schema')
      return new ClusterDb(pool, rows[0]?.schema ?? 'public')
    } catch (error) {
      await pool.end()
      throw error
    }
  }

  async register(replica: string, now: number): Promise<void> {
    await this.#pool.query(
      `INSERT INTO cluster_replicas (id, started_at, heartbeat_at) VALUES ($1, $2, $2)
       ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at`,
      [replica, now],
    )
  }

  /** Refreshes `replica`'s heartbeat; false when its row is gone (it was taken for dead). */
  async heartbeat(replica: string, now: number): Promise<boolean> {
    const { rowCount } = await this.#pool.query('UPDATE cluster_replicas SET heartbeat_at = $2 WHERE id = $1', [replica, now])
    return rowCount === 1
  }

  /** Removes replicas silent since `before`, and with them their sessions. */
  async reap(before: number): Promise<number> {
    const { rowCount } = await this.#pool.query('DELETE FROM cluster_replicas WHERE heartbeat_at < $1', [before])
    return rowCount ?? 0
  }

  /** Removes `replica` (closing): its sessions leave the pool at once. */
  async deregister(replica: string): Promise<void> {
    await this.#pool.query('DELETE FROM cluster_replicas WHERE id = $1', [replica])
  }

  /**
   * Records that `replica` now holds the lease of `model`; returns who held it before (undefined
   * the first time). Called only by the holder of the advisory lock, so writers never race.
   */
  async claimLease(model: string, replica: string, now: number): Promise<string | undefined> {
    const { rows } = await this.#pool.query<{ previous: string | null }>(
      `WITH prev AS (SELECT replica FROM cluster_leases WHERE model = $1)
       INSERT INTO cluster_leases (model, replica, acquired_at) VALUES ($1, $2, $3)
       ON CONFLICT (model) DO UPDATE SET replica = excluded.replica, acquired_at = excluded.acquired_at
       RETURNING (SELECT replica FROM prev) AS previous`,
      [model, replica, now],
    )
    return rows[0]?.previous ?? undefined
  }

  async addSessions(replica: string, model: string, sessions: readonly string[], now: number): Promise<void> {
    if (sessions.length === 0) return
    await this.#pool.query(
      `INSERT INTO cluster_sessions (session, replica, model, joined_at)
       SELECT s, $1, $2, $3 FROM unnest($4::text[]) AS s ON CONFLICT (session) DO NOTHING`,
      [replica, model, now, [...sessions]],
    )
  }

  async removeSession(session: string): Promise<void> {
    await this.#pool.query('DELETE FROM cluster_sessions WHERE session = $1', [session])
  }

  /** Sessions of `model` on replicas that beat since `since`. */
  async liveSessions(model: string, since: number): Promise<PooledSession[]> {
    const { rows } = await this.#pool.query<PooledSession>(
      `SELECT s.session, s.replica FROM cluster_sessions s JOIN cluster_replicas r ON r.id = s.replica
       WHERE s.model = $1 AND r.heartbeat_at >= $2 ORDER BY s.session`,
      [model, since],
    )
    return rows
  }

  async countLiveSessions(model: string, since: number): Promise<number> {
    const { rows } = await this.#pool.query<{ n: number }>(
      `SELECT count(*)::integer AS n FROM cluster_sessions s JOIN cluster_replicas r ON r.id = s.replica
       WHERE s.model = $1 AND r.heartbeat_at >= $2`,
      [model, since],
    )
    return rows[0]?.n ?? 0
  }

  async createRound(roundId: number, model: string, coordinator: string): Promise<void> {
    await this.#pool.query('INSERT INTO cluster_rounds (round_id, model, coordinator) VALUES ($1, $2, $3)', [roundId, model, coordinator])
  }

  /** Writes every group of a round and its shared quantization in one transaction. */
  async assign(roundId: number, maxSummands: number, groups: readonly GroupAssignment[]): Promise<void> {
    await transaction(this.#pool, async (client) => {
      await client.query('UPDATE cluster_rounds SET max_summands = $2 WHERE round_id = $1', [roundId, maxSummands])
      for (const g of groups) {
        await client.query('INSERT INTO cluster_groups (round_id, group_id, replica, sessions) VALUES ($1, $2, $3, $4)', [
          roundId,
          g.groupId,
          g.replica,
          [...g.sessions],
        ])
      }
    })
  }

  /** Unsettled groups assigned to `replica` in rounds that have not ended. */
  async assignedTo(replica: string): Promise<AssignedGroup[]> {
    const { rows } = await this.#pool.query<{ round_id: string; group_id: number; sessions: string[]; model: string; max_summands: number }>(
      `SELECT g.round_id, g.group_id, g.sessions, c.model, c.max_summands
       FROM cluster_groups g JOIN cluster_rounds c USING (round_id) JOIN rounds r ON r.id = g.round_id
       WHERE g.replica = $1 AND NOT g.settled AND r.outcome IS NULL
       ORDER BY g.round_id, g.group_id`,
      [replica],
    )
    return rows.map((r) => ({ roundId: Number(r.round_id), groupId: r.group_id, replica, sessions: r.sessions, model: r.model, maxSummands: r.max_summands }))
  }

  /**
   * Records how one group ended, once: a settled group is never written again, and nothing is
   * written for a round that already ended (its sum would outlive the round).
   */
  async settle(replica: string, s: GroupSettlement): Promise<boolean> {
    const sum = s.sum === null ? null : Buffer.from(s.sum.buffer, s.sum.byteOffset, s.sum.byteLength)
    const { rowCount } = await this.#pool.query(
      `UPDATE cluster_groups SET settled = true, sum = $4, survivors = $5, record = $6
       WHERE round_id = $1 AND group_id = $2 AND replica = $3 AND NOT settled
         AND EXISTS (SELECT 1 FROM rounds WHERE id = $1 AND outcome IS NULL)`,
      [s.roundId, s.groupId, replica, sum, s.survivors, JSON.stringify(s.record)],
    )
    return rowCount === 1
  }

  /** Marks unsettled groups of a round as ended without a sum (their replica died, or the deadline passed). */
  async loseGroups(roundId: number, lost: readonly { readonly groupId: number; readonly record: SecAggGroupRecord }[]): Promise<void> {
    for (const { groupId, record } of lost) {
      await this.#pool.query('UPDATE cluster_groups SET settled = true, record = $3 WHERE round_id = $1 AND group_id = $2 AND NOT settled', [
        roundId,
        groupId,
        JSON.stringify(record),
      ])
    }
  }

  /** Every group of a round, with whether its replica beat since `since`. */
  async groups(roundId: number, since: number): Promise<GroupState[]> {
    const { rows } = await this.#pool.query<GroupRow>(
      `SELECT g.group_id, g.replica, g.sessions, g.settled, g.sum, g.survivors, g.record,
              coalesce(r.heartbeat_at >= $2, false) AS alive
       FROM cluster_groups g LEFT JOIN cluster_replicas r ON r.id = g.replica
       WHERE g.round_id = $1 ORDER BY g.group_id`,
      [roundId, since],
    )
    return rows.map((r) => ({
      roundId,
      groupId: r.group_id,
      replica: r.replica,
      sessions: r.sessions,
      settled: r.settled,
      sum: r.sum === null ? null : toUint32(r.sum),
      survivors: r.survivors,
      record: r.record,
      replicaAlive: r.alive,
    }))
  }

  /** The latest version number of every model: cheap enough for each heartbeat. */
  async latestVersions(): Promise<Map<string, number>> {
    const { rows } = await this.#pool.query<{ model: string; version: number }>('SELECT model, max(version) AS version FROM model_versions GROUP BY model')
    return new Map(rows.map((r) => [r.model, r.version]))
  }

  /** Forgets what a round no longer needs once it ended: the group sums and the pseudonyms. */
  async wipe(roundId: number): Promise<void> {
    await this.#pool.query(`UPDATE cluster_groups SET sum = NULL, sessions = '{}' WHERE round_id = $1`, [roundId])
  }

  /** Tells every replica listening on this schema that `kind` happened to `model` (a hint: they re-read the tables). */
  async notify(kind: ClusterEvent, model: string): Promise<void> {
    await this.#pool.query('SELECT pg_notify($1, $2)', [CLUSTER_CHANNEL, `${this.schema}|${kind}|${model}`])
  }

  async close(): Promise<void> {
    await this.#pool.end()
  }
}

/** What a notification says happened; the tables say the rest. */
export type ClusterEvent = 'assigned' | 'settled' | 'ended' | 'published'

/** The one channel every replica listens on; payloads name the schema, so schemas do not mix. */
export const CLUSTER_CHANNEL = 'hearth_cluster'

/** Parses a payload of {@link ClusterDb.notify}; undefined when it is for another schema or malformed. */
export function parseNotification(schema: string, payload: string | undefined): { readonly kind: ClusterEvent; readonly model: string } | undefined {
  const [from, kind, model] = (payload ?? '').split('|')
  if (from !== schema || model === undefined) return undefined
  if (kind !== 'assigned' && kind !== 'settled' && kind !== 'ended' && kind !== 'published') return undefined
  return { kind, model }
}

function toUint32(bytes: Buffer): Uint32Array {
  // A copy: the Buffer may sit unaligned in pg's receive buffer.
  const copy = new Uint8Array(bytes)
  return new Uint32Array(copy.buffer, 0, copy.byteLength / 4)
}

async function transaction(pool: pg.Pool, fn: (client: PoolClient) => Promise<void>): Promise<void> {
  const client = await pool.connect()
  let broken: Error | undefined
  try {
    await client.query('BEGIN')
    await fn(client)
    await client.query('COMMIT')
  } catch (error) {
    await client.query('ROLLBACK').catch((rollbackError: unknown) => {
      broken = rollbackError as Error
    })
    throw error
  } finally {
    client.release(broken)
  }
}
