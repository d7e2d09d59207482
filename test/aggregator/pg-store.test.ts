/**
 * What only PostgreSQL has: migrations under an advisory lock, several processes (here, pools)
 * on one database, ids that survive reconnects and failed inserts. The shared contract is in
 * `store.test.ts`.
 */
import pg from 'pg'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { versionRecord } from '../../aggregator/models/weights.ts'
import { PG_MIGRATIONS, PG_SCHEMA_VERSION } from '../../aggregator/store/pg-migrations.ts'
import { PgStore } from '../../aggregator/store/pg-store.ts'
import { freshRound } from '../../aggregator/store/store.ts'
import { HearthError } from '../../protocol/errors.ts'
import { mfSpec } from '../../protocol/model-spec.ts'
import { freshSchema, PG_SKIP_REASON, PG_URL } from './pg.ts'
import type { PgSchema } from './pg.ts'

const spec = mfSpec('m', { buckets: 2, dim: 1 })
const weights = (seed: number) => Float32Array.from({ length: 6 }, (_, i) => seed + i / 8)

const ROUND = freshRound({
  model: 'm',
  baseVersion: 1,
  stage: 'selection',
  config: {
    minCohort: 2,
    maxCohort: 5,
    selectionTimeoutMs: 100,
    uploadTimeoutMs: 1000,
    training: { epochs: 1, batchSize: 8, learningRate: 0.1, maxExamples: 100 },
    strategy: 'plain-sum',
    optimizer: 'fedavg',
  },
  createdAt: Date.UTC(2026, 11, 1), // epoch milliseconds need bigint columns
})

let schema: PgSchema
const stores: PgStore[] = []

beforeEach(async (context) => {
  if (PG_URL === undefined) context.skip(PG_SKIP_REASON)
  schema = await freshSchema()
})

afterEach(async () => {
  for (const store of stores.splice(0)) await store.close()
  await schema?.drop()
})

async function connect(): Promise<PgStore> {
  const store = await PgStore.connect(schema.config)
  stores.push(store)
  return store
}

async function query<R extends pg.QueryResultRow>(sql: string): Promise<R[]> {
  const client = new pg.Client(schema.config)
  await client.connect()
  try {
    return (await client.query<R>(sql)).rows
  } finally {
    await client.end()
  }
}

describe('PgStore on PostgreSQL', () => {
  test('migrates once even when several processes start together, and records the version', async () => {
    await Promise.all([connect(), connect(), connect(), connect()])
    const applied = await query<{ version: number; description: string }>('SELECT version, description FROM hearth_schema_migrations ORDER BY version')
    expect(applied).toEqual(PG_MIGRATIONS.map(({ version, description }) => ({ version, description })))
    const tables = await query<{ table_name: string }>(
      'SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name',
    )
    // Nothing but aggregates, metadata, the privacy ledger and the audit log (and the migrations' own table).
    expect(tables.map((t) => t.table_name)).toEqual(['audit_log', 'hearth_schema_migrations', 'model_versions', 'models', 'optimizer_state', 'privacy_ledger', 'privacy_state', 'rounds'])
  })

  test('migrates once under a stricter default isolation too', async () => {
    const strict = { ...schema.config, options: `${schema.config.options ?? ''} -c default_transaction_isolation=serializable` }
    const started = await Promise.all([0, 1, 2, 3].map(() => PgStore.connect(strict)))
    stores.push(...started)
    expect(await query('SELECT version FROM hearth_schema_migrations')).toHaveLength(PG_MIGRATIONS.length)
  })

  test('data and ids survive a reconnect; a failed insert burns its id, never reuses one', async () => {
    const first = await connect()
    await first.createModel({ name: 'm', spec, createdAt: 10 }, versionRecord('m', 1, weights(3), null, 10))
    const round = await first.createRound(ROUND)
    expect(round.id).toBeGreaterThan(0)
    await expect(first.createRound({ ...ROUND, model: 'unknown' })).rejects.toThrow(HearthError)
    await first.close()

    const second = await connect()
    expect(Array.from((await second.latestVersion('m'))!.weights)).toEqual(Array.from(weights(3)))
    expect(await second.getRound(round.id)).toEqual(round)
    const next = await second.createRound(ROUND)
    expect(next.id).toBeGreaterThan(round.id + 1)
    expect(await second.lastRoundId()).toBe(next.id)
  })

  test('two processes publishing the same version: exactly one wins, the other changes nothing', async () => {
    const [a, b] = await Promise.all([connect(), connect()])
    await a.createModel({ name: 'm', spec, createdAt: 10 }, versionRecord('m', 1, weights(0), null, 10))
    const [ra, rb] = await Promise.all([a.createRound(ROUND), b.createRound(ROUND)])
    const finished = { stage: 'done', outcome: 'published', reason: 'ok', closedAt: 20, publishedVersion: 2 } as const
    const results = await Promise.allSettled([
      a.publishRound({ ...ra, ...finished }, versionRecord('m', 2, weights(1), ra.id, 20)),
      b.publishRound({ ...rb, ...finished }, versionRecord('m', 2, weights(2), rb.id, 20)),
    ])
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
    const failure = results.find((r) => r.status === 'rejected')
    expect((failure as PromiseRejectedResult).reason).toMatchObject({ code: 'HEARTH_ERR_ROUND_FAILED' })
    const winner = results[0]!.status === 'fulfilled' ? ra : rb
    const loser = winner === ra ? rb : ra
    expect((await b.latestVersion('m'))?.roundId).toBe(winner.id)
    expect((await a.getRound(loser.id))?.outcome).toBeNull()
  })

  test('two processes creating the same model: one creates it, the other is refused', async () => {
    const [a, b] = await Promise.all([connect(), connect()])
    const results = await Promise.allSettled([
      a.createModel({ name: 'm', spec, createdAt: 10 }, versionRecord('m', 1, weights(0), null, 10)),
      b.createModel({ name: 'm', spec, createdAt: 11 }, versionRecord('m', 1, weights(1), null, 11)),
    ])
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
    expect((results.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason).toMatchObject({ code: 'HEARTH_ERR_INVALID_CONFIG' })
    expect(await query('SELECT version FROM model_versions')).toHaveLength(1)
  })

  test('refuses a database written by a newer build', async () => {
    await (await connect()).close()
    await query(`INSERT INTO hearth_schema_migrations (version, description) VALUES (${PG_SCHEMA_VERSION + 1}, 'from the future')`)
    await expect(PgStore.connect(schema.config)).rejects.toThrow(/newer than this build/)
  })

  test('close is idempotent', async () => {
    const store = await connect()
    await store.close()
    await store.close()
  })
})
