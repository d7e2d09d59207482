/**
 * Turns the `store` option into an open store: the one given, a PostgreSQL connection, or by
 * default the SQLite file under the data directory.
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { FastifyBaseLogger } from 'fastify'
import type { ResolvedOptions } from '../options.ts'
import { PgStore } from './pg-store.ts'
import { DATABASE_FILE, SqliteStore } from './sqlite-store.ts'
import type { AggregatorStore } from './store.ts'

export async function openStore(options: Pick<ResolvedOptions, 'store' | 'dataDir'>, log: FastifyBaseLogger): Promise<AggregatorStore> {
  const { store } = options
  if (store === undefined) {
    mkdirSync(options.dataDir, { recursive: true })
    return SqliteStore.open(join(options.dataDir, DATABASE_FILE))
  }
  if (!('postgres' in store)) return store
  return PgStore.connect(store.postgres, {
    onIdleError: (error) => log.warn({ err: error }, 'an idle PostgreSQL connection failed; the pool reconnects on the next query'),
  })
}
