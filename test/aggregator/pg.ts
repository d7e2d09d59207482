/**
 * PostgreSQL for the tests: `HEARTH_TEST_PG_URL` names a database the tests may create schemas
 * in (`.ci/run` starts Debian's PostgreSQL and sets it). Unset, the PostgreSQL tests are
 * skipped with {@link PG_SKIP_REASON}: no local server is guessed at. Under CI it must be set,
 * so that a broken CI setup fails instead of passing with the PostgreSQL tests skipped.
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import type { PoolConfig } from 'pg'

export const PG_URL: string | undefined = process.env.HEARTH_TEST_PG_URL || undefined

export const PG_SKIP_REASON = 'HEARTH_TEST_PG_URL is not set (e.g. postgres://hearth:hearth@127.0.0.1:5432/hearth_test)'

if (PG_URL === undefined && process.env.CI === 'true') {
  throw new Error('CI must set HEARTH_TEST_PG_URL: .ci/run starts PostgreSQL for the PostgreSQL tests')
}

/** A schema of its own for one test, and the pool configuration whose tables live in it. */
export interface PgSchema {
  /** A URL with the schema as its search_path, for the CLI's `--postgres`. */
  readonly url: string
  readonly config: PoolConfig
  /** Drops the schema and everything in it. */
  drop(): Promise<void>
}

/** Creates an empty, uniquely named schema in the test database. Needs {@link PG_URL}. */
export async function freshSchema(): Promise<PgSchema> {
  if (PG_URL === undefined) throw new Error(PG_SKIP_REASON)
  const url = PG_URL
  const name = `hearth_test_${process.pid}_${randomBytes(4).toString('hex')}`
  await admin(url, `CREATE SCHEMA ${name}`)
  const options = `-c search_path=${name}`
  const withSchema = new URL(url)
  withSchema.searchParams.set('options', options)
  return {
    url: withSchema.toString(),
    config: { connectionString: url, options },
    drop: () => admin(url, `DROP SCHEMA ${name} CASCADE`),
  }
}

async function admin(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    await client.query(sql)
  } finally {
    await client.end()
  }
}
