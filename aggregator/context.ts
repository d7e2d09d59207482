/**
 * What the plugins share, decorated on the Fastify instance as `app.hearth`. Later plugins
 * (metrics, admin actions, dashboard) read from here rather than reaching into each other.
 */
import type { RoundAudit } from './audit/audit-log.ts'
import type { Cluster } from './cluster/cluster.ts'
import type { AggregatorCounters } from './counters.ts'
import type { ModelRegistry } from './models/registry.ts'
import type { ResolvedOptions } from './options.ts'
import type { RoundService } from './rounds/service.ts'
import type { AggregatorStore } from './store/store.ts'

export interface AggregatorContext {
  readonly options: ResolvedOptions
  readonly store: AggregatorStore
  readonly registry: ModelRegistry
  readonly rounds: RoundService
  /** Appends round outcomes to the audit log. */
  readonly audit: RoundAudit
  /** App-level counters, for a metrics exporter. */
  readonly counters: AggregatorCounters
  /** The WebSocket `maxPayload`: a Weights/Update frame of the largest model. */
  readonly maxMessageBytes: number
  /** This process as a cluster replica, in cluster mode (`cluster/cluster.ts`). */
  readonly cluster: Cluster | undefined
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The aggregator's shared state; see `aggregator/context.ts`. */
    readonly hearth: AggregatorContext
  }
}
