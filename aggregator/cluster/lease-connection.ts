/**
 * The one connection a replica keeps for itself: it holds the coordinator leases and listens
 * for cluster notifications.
 *
 * A lease is a session-level advisory lock (PostgreSQL docs, "Advisory Locks"): held by this
 * connection until it is released or the connection ends. So a coordinator that dies — killed,
 * crashed, cut off — loses its leases as soon as PostgreSQL sees the connection close, with no
 * expiry to wait for and no clock to trust; and two replicas can never both hold one.
 */
import pg from 'pg'
import { CLUSTER_CHANNEL } from './cluster-db.ts'

export interface LeaseConnectionOptions {
  readonly url: string
  /** Called with each notification payload on {@link CLUSTER_CHANNEL}. */
  readonly onNotification: (payload: string | undefined) => void
  /** Called once if the connection fails: every lease it held is gone. */
  readonly onLost: (error: Error) => void
}

export class LeaseConnection {
  readonly #client: pg.Client
  readonly #schema: string
  readonly #held = new Set<string>()
  #lost = false

  private constructor(client: pg.Client, schema: string) {
    this.#client = client
    this.#schema = schema
  }

  static async open(options: LeaseConnectionOptions, schema: string): Promise<LeaseConnection> {
    const client = new pg.Client({ connectionString: options.url })
    const connection = new LeaseConnection(client, schema)
    const lost = (error: Error): void => {
      if (connection.#lost) return
      connection.#lost = true
      connection.#held.clear()
      options.onLost(error)
    }
    client.on('error', lost)
    client.on('end', () => lost(new Error('the lease connection ended')))
    client.on('notification', (message) => {
      if (message.channel === CLUSTER_CHANNEL) options.onNotification(message.payload)
    })
    await client.connect()
    await client.query(`LISTEN ${CLUSTER_CHANNEL}`)
    return connection
  }

  /** Whether the connection (and so every lease it took) is gone. */
  get lost(): boolean {
    return this.#lost
  }

  /** Whether this replica holds the lease of `model`. */
  holds(model: string): boolean {
    return this.#held.has(model)
  }

  /** Takes the lease of `model` if nobody holds it; true if this replica holds it now. */
  async tryAcquire(model: string): Promise<boolean> {
    if (this.#lost) return false
    if (this.#held.has(model)) return true
    const { rows } = await this.#client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtext($1)) AS ok', [this.#key(model)])
    if (rows[0]?.ok === true) this.#held.add(model)
    return this.#held.has(model)
  }

  /** Ends the connection, which releases every lease. */
  async close(): Promise<void> {
    this.#lost = true
    this.#held.clear()
    await this.#client.end().catch(() => {})
  }

  /** Advisory locks are database-wide: the key names the schema as well as the model. */
  #key(model: string): string {
    return `hearth.cluster.coordinator/${this.#schema}/${model}`
  }
}
