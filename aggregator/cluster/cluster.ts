/**
 * This process as one replica of a cluster (`cluster` option): several aggregators sharing one
 * PostgreSQL, splitting each round's secure-aggregation groups between them. It owns the
 * replica's identity and heartbeat, the lease connection, and one {@link ClusterEngine} per model,
 * and drives them: on each heartbeat and on each notification it
 *
 * 1. removes replicas that stopped beating (their sessions leave the pool); its own heartbeat
 *    runs on a timer of its own, and re-registers it, with its sessions, if it was taken for dead;
 * 2. tries to take the lease of each model nobody coordinates; on taking one, takes the previous
 *    holder for dead and aborts the rounds it left (`RoundCoordinator.takeOver`);
 * 3. lets each coordinator step its round, and each engine take up its assigned groups and end
 *    the rounds that ended;
 * 4. serves versions published by other replicas: at once on `published`, and from the next
 *    beat for any other (a rollback), instead of the latest version read at start.
 *
 * Notifications (LISTEN/NOTIFY) only make this happen sooner; the heartbeat alone is enough.
 */
import { randomBytes } from 'node:crypto'
import type { FastifyBaseLogger } from 'fastify'
import type { ModelRegistry } from '../models/registry.ts'
import type { RoundEngineOptions } from '../rounds/engine.ts'
import type { ResolvedSecAgg } from '../rounds/secagg-options.ts'
import type { ModelEngine } from '../rounds/service.ts'
import { ClusterDb, parseNotification } from './cluster-db.ts'
import { ClusterEngine } from './cluster-engine.ts'
import type { ResolvedCluster } from './cluster-options.ts'
import { LeaseConnection } from './lease-connection.ts'

export interface ClusterStartOptions {
  readonly settings: ResolvedCluster
  readonly secagg: ResolvedSecAgg
  readonly registry: ModelRegistry
  readonly log: FastifyBaseLogger
  readonly now?: () => number
}

export class Cluster {
  /** This replica's id: random per process, so a restarted process is a new replica. */
  readonly replica = randomBytes(8).toString('hex')
  readonly #o: ClusterStartOptions
  readonly #db: ClusterDb
  readonly #now: () => number
  readonly #log: FastifyBaseLogger
  readonly #engines = new Map<string, ClusterEngine>()
  #lease: LeaseConnection | undefined
  #timer: NodeJS.Timeout | undefined
  #beatTimer: NodeJS.Timeout | undefined
  #beating: Promise<void> | undefined
  /** The step running now; a request meanwhile runs one more step after it. */
  #running: Promise<void> | undefined
  #again = false
  #closed = false

  private constructor(options: ClusterStartOptions, db: ClusterDb) {
    this.#o = options
    this.#db = db
    this.#now = options.now ?? Date.now
    this.#log = options.log.child({ replica: this.replica })
  }

  /** Connects, migrates the cluster tables and registers this replica. Call {@link begin} once the engines exist. */
  static async start(options: ClusterStartOptions): Promise<Cluster> {
    const db = await ClusterDb.connect(options.settings.postgres, (error) =>
      options.log.warn({ err: error }, 'an idle cluster connection failed; the pool reconnects on the next query'),
    )
    const cluster = new Cluster(options, db)
    try {
      await db.register(cluster.replica, cluster.#now())
      cluster.#lease = await cluster.#openLease()
    } catch (error) {
      await db.close()
      throw error
    }
    cluster.#log.info('cluster replica registered')
    return cluster
  }

  /** For `RoundService`: each model's engine is a cluster engine. */
  readonly createEngine = (options: RoundEngineOptions): ModelEngine => {
    const engine = new ClusterEngine({ engine: options, replica: this.replica, db: this.#db, secagg: this.#o.secagg, replicaTimeoutMs: this.#o.settings.replicaTimeoutMs })
    this.#engines.set(options.model.name, engine)
    return engine
  }

  /** Models whose rounds this replica coordinates now. */
  coordinating(): string[] {
    return [...this.#engines.keys()].filter((model) => this.#lease?.holds(model) === true)
  }

  /** Starts the heartbeat; the first step runs at once. */
  begin(): void {
    this.#timer = setInterval(() => this.poke(), this.#o.settings.heartbeatMs)
    this.#timer.unref()
    // Beats on a timer of its own: a slow step (a publish, a burst of groups) must not make this
    // replica look dead to the coordinator.
    this.#beatTimer = setInterval(() => {
      this.#beating ??= this.#beat()
        .catch((error: unknown) => this.#log.error({ err: error }, 'heartbeat failed'))
        .finally(() => {
          this.#beating = undefined
        })
    }, this.#o.settings.heartbeatMs)
    this.#beatTimer.unref()
    this.poke()
  }

  /** Runs a step soon (serialized: never two at once). */
  poke(): void {
    if (this.#closed) return
    if (this.#running !== undefined) {
      this.#again = true
      return
    }
    this.#running = this.#step()
      .catch((error: unknown) => this.#log.error({ err: error }, 'cluster step failed'))
      .finally(() => {
        this.#running = undefined
        if (this.#again) {
          this.#again = false
          this.poke()
        }
      })
  }

  /**
   * Leaves the cluster: called after the engines closed (their groups reported, their
   * coordinated rounds aborted). Deregistering removes this replica's sessions from the pool;
   * closing the lease connection frees its leases for the other replicas.
   */
  async close(): Promise<void> {
    this.#closed = true
    if (this.#timer !== undefined) clearInterval(this.#timer)
    if (this.#beatTimer !== undefined) clearInterval(this.#beatTimer)
    await this.#running
    await this.#beating
    try {
      await this.#db.deregister(this.replica)
    } catch (error) {
      this.#log.error({ err: error }, 'could not deregister the replica')
    }
    await this.#lease?.close()
    await this.#db.close()
  }

  async #beat(): Promise<void> {
    const now = this.#now()
    if (this.#closed || (await this.#db.heartbeat(this.replica, now))) return
    // Taken for dead (a long pause): back into the cluster, with the sessions still here.
    this.#log.warn('this replica had been taken for dead; registering again')
    await this.#db.register(this.replica, now)
    for (const engine of this.#engines.values()) await this.#db.addSessions(this.replica, engine.model, engine.sessionIds(), now)
  }

  async #step(): Promise<void> {
    const now = this.#now()
    await this.#db.reap(now - this.#o.settings.replicaTimeoutMs)
    if (this.#lease === undefined || this.#lease.lost) this.#lease = await this.#openLease().catch(() => undefined)
    // A version published elsewhere without a notification reaching this replica (a rollback on
    // another replica, or a notification lost with a connection) is served from the next beat.
    const versions = await this.#db.latestVersions()
    for (const model of this.#engines.keys()) {
      if ((versions.get(model) ?? 0) > this.#o.registry.latest(model).version) await this.#o.registry.refresh(model)
    }
    const assigned = await this.#db.assignedTo(this.replica)
    for (const engine of this.#engines.values()) {
      if (this.#closed) return
      const lease = this.#lease
      if (lease !== undefined && !lease.holds(engine.model) && (await lease.tryAcquire(engine.model))) {
        const previous = await this.#db.claimLease(engine.model, this.replica, this.#now())
        this.#log.info({ model: engine.model, previous }, 'took the coordinator lease')
        // Its lease ended with its connection: taken for dead now rather than after
        // replicaTimeoutMs, so no new cohort is drawn from its sessions. If it lives on, its
        // next heartbeat registers it again.
        if (previous !== undefined && previous !== this.replica) await this.#db.deregister(previous)
        await engine.coordinator.takeOver()
      }
      if (lease?.holds(engine.model) === true) await engine.coordinator.tick()
      await engine.sync(assigned)
    }
  }

  async #openLease(): Promise<LeaseConnection> {
    return LeaseConnection.open(
      {
        url: this.#o.settings.postgres,
        onNotification: (payload) => this.#notified(payload),
        onLost: (error) => {
          // Another replica may take the leases now; this one stops coordinating until it holds them again.
          this.#log.error({ err: error }, 'lost the lease connection: no longer coordinating')
        },
      },
      this.#db.schema,
    )
  }

  #notified(payload: string | undefined): void {
    const event = parseNotification(this.#db.schema, payload)
    if (event === undefined) return
    if (event.kind === 'published' && this.#o.registry.has(event.model)) {
      this.#o.registry.refresh(event.model).catch((error: unknown) => this.#log.error({ err: error }, 'could not read the new version'))
    }
    this.poke()
  }
}
