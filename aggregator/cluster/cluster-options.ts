/**
 * The cluster options (`cluster`): several aggregator processes sharing one PostgreSQL and
 * splitting each round's secure-aggregation groups between them (`aggregator/cluster`).
 */
import { HearthError } from '../../protocol/errors.ts'

/** `cluster`: every field optional. */
export interface ClusterOptions {
  /**
   * How often a replica writes its heartbeat, checks the tables it acts on and tries to take
   * the coordinator lease of a model nobody holds. Default 1 000 ms.
   */
  readonly heartbeatMs?: number
  /**
   * A replica whose heartbeat is older than this is taken for dead: its sessions leave the pool
   * and its groups of the running round count as dropped. Default 5 × `heartbeatMs`.
   */
  readonly replicaTimeoutMs?: number
}

export interface ResolvedCluster {
  readonly heartbeatMs: number
  readonly replicaTimeoutMs: number
  /** The database the replicas share (the store's). */
  readonly postgres: string
}

/** What cluster mode needs of the rest of the configuration. */
export interface ClusterRequirements {
  /** The `postgres://` URL of the store, when the store is PostgreSQL by URL. */
  readonly postgres: string | undefined
  readonly secureAggregation: boolean
  readonly privacy: boolean
}

/** Applies defaults and validates; throws `HEARTH_ERR_INVALID_CONFIG` naming the option. */
export function resolveCluster(options: ClusterOptions | boolean | undefined, needs: ClusterRequirements): ResolvedCluster | null {
  if (options === undefined || options === false) return null
  const o = options === true ? {} : options
  // Replicas share round state through the database; only PostgreSQL is shared.
  if (needs.postgres === undefined) invalid('cluster', 'needs store: { postgres: url } (--postgres): the replicas share one PostgreSQL')
  // Group sums are what replicas hand the coordinator: without secure aggregation there would be
  // only individual updates to hand over, which must never leave the replica (DESIGN.md §3).
  if (!needs.secureAggregation) invalid('cluster', "needs rounds.aggregation 'secagg': replicas hand the coordinator group sums only")
  if (needs.privacy) invalid('cluster', 'does not support rounds.privacy yet: run differential privacy on a single aggregator')
  const heartbeatMs = integer('cluster.heartbeatMs', o.heartbeatMs ?? 1_000, 10, 60_000)
  const replicaTimeoutMs = integer('cluster.replicaTimeoutMs', o.replicaTimeoutMs ?? 5 * heartbeatMs, 2 * heartbeatMs, 600_000)
  return { heartbeatMs, replicaTimeoutMs, postgres: needs.postgres }
}

function integer(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) invalid(name, `must be an integer in [${min}, ${max}], got ${value}`)
  return value
}

function invalid(option: string, detail: string): never {
  throw new HearthError('HEARTH_ERR_INVALID_CONFIG', `${option} ${detail}`)
}
