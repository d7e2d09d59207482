import { existsSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterEach, describe, expect, test } from 'vitest'
import { versionRecord } from '../../aggregator/models/weights.ts'
import { MemoryStore } from '../../aggregator/store/memory-store.ts'
import { SCHEMA_VERSION } from '../../aggregator/store/migrations.ts'
import { DATABASE_FILE, SqliteStore } from '../../aggregator/store/sqlite-store.ts'
import type { AggregatorStore, NewRound } from '../../aggregator/store/store.ts'
import { HearthError } from '../../protocol/errors.ts'
import { mfSpec } from '../../protocol/model-spec.ts'
import { tempDir } from './helpers.ts'

const spec = mfSpec('m', { buckets: 2, dim: 1 }) // 2 + 2 + 1 + 1 = 6 weights
const weights = (seed: number) => Float32Array.from({ length: 6 }, (_, i) => seed + i / 8)

function draft(overrides: Partial<NewRound> = {}): NewRound {
  return {
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
    createdAt: 1000,
    selectedAt: null,
    uploadDeadline: null,
    closedAt: null,
    eligible: 0,
    participants: 0,
    uploadsAccepted: 0,
    dropped: 0,
    rejections: {},
    outcome: null,
    reason: null,
    publishedVersion: null,
    ...overrides,
  }
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(error).toBeInstanceOf(HearthError)
  expect((error as HearthError).code).toBe(code)
}

const cleanups: (() => void | Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

const implementations: [string, () => AggregatorStore][] = [
  ['MemoryStore', () => new MemoryStore()],
  [
    'SqliteStore',
    () => {
      const dir = tempDir()
      const store = SqliteStore.open(join(dir.path, DATABASE_FILE))
      cleanups.push(dir.remove)
      return store
    },
  ],
]

describe.each(implementations)('AggregatorStore contract: %s', (_name, create) => {
  function open(): AggregatorStore {
    const store = create()
    cleanups.push(() => store.close())
    return store
  }

  test('models: created with version 1, atomically, names unique', async () => {
    const store = open()
    expect(await store.getModel('m')).toBeUndefined()
    expect(await store.latestVersion('m')).toBeUndefined()
    const v1 = versionRecord('m', 1, weights(0), null, 10)
    await store.createModel({ name: 'm', spec, createdAt: 10 }, v1)
    expect(await store.getModel('m')).toEqual({ name: 'm', spec, createdAt: 10 })
    const latest = await store.latestVersion('m')
    expect(latest).toEqual(v1)
    expect(latest?.weights).toBeInstanceOf(Float32Array)
    await expectCode(store.createModel({ name: 'm', spec, createdAt: 11 }, versionRecord('m', 1, weights(1), null, 11)), 'HEARTH_ERR_INVALID_CONFIG')
    expect(Array.from((await store.getVersion('m', 1))!.weights)).toEqual(Array.from(weights(0)))
  })

  test('returned weights are copies', async () => {
    const store = open()
    await store.createModel({ name: 'm', spec, createdAt: 10 }, versionRecord('m', 1, weights(0), null, 10))
    const read = (await store.latestVersion('m'))!
    read.weights.fill(99)
    expect(Array.from((await store.latestVersion('m'))!.weights)).toEqual(Array.from(weights(0)))
  })

  test('rounds: ids increase, records round-trip, updates replace', async () => {
    const store = open()
    await store.createModel({ name: 'm', spec, createdAt: 10 }, versionRecord('m', 1, weights(0), null, 10))
    expect(await store.lastRoundId()).toBe(0)
    const r1 = await store.createRound(draft())
    const r2 = await store.createRound(draft({ createdAt: 2000 }))
    expect(r2.id).toBeGreaterThan(r1.id)
    expect(await store.lastRoundId()).toBe(r2.id)
    expect(await store.getRound(r1.id)).toEqual(r1)
    const updated = {
      ...r1,
      stage: 'training' as const,
      selectedAt: 1100,
      uploadDeadline: 2100,
      eligible: 7,
      participants: 5,
      uploadsAccepted: 3,
      dropped: 1,
      rejections: { HEARTH_ERR_LATE_UPLOAD: 2, HEARTH_ERR_MALFORMED_FRAME: 1 },
    }
    await store.updateRound(updated)
    expect(await store.getRound(r1.id)).toEqual(updated)
    expect(await store.getRound(999)).toBeUndefined()
    await expectCode(store.createRound(draft({ model: 'unknown' })), 'HEARTH_ERR_UNKNOWN_MODEL')
    await expectCode(store.updateRound({ ...updated, id: 999 }), 'HEARTH_ERR_UNKNOWN_ROUND')
  })

  test('publishRound stores the version and the round together, and never twice', async () => {
    const store = open()
    await store.createModel({ name: 'm', spec, createdAt: 10 }, versionRecord('m', 1, weights(0), null, 10))
    const round = await store.createRound(draft())
    const v2 = versionRecord('m', 2, weights(5), round.id, 20)
    const finished = { ...round, stage: 'done' as const, outcome: 'published' as const, reason: 'ok', closedAt: 20, publishedVersion: 2 }
    await store.publishRound(finished, v2)
    expect(await store.latestVersion('m')).toEqual(v2)
    expect(await store.getVersion('m', 1)).toMatchObject({ version: 1 })
    expect(await store.getRound(round.id)).toEqual(finished)

    // A second round claiming version 2 fails and changes nothing.
    const other = await store.createRound(draft())
    const clash = { ...other, outcome: 'published' as const, stage: 'done' as const, publishedVersion: 2 }
    await expectCode(store.publishRound(clash, versionRecord('m', 2, weights(9), other.id, 30)), 'HEARTH_ERR_ROUND_FAILED')
    expect(await store.latestVersion('m')).toEqual(v2)
    expect((await store.getRound(other.id))?.outcome).toBeNull()
  })

  test('listRounds: newest first, by model, keyset pages', async () => {
    const store = open()
    await store.createModel({ name: 'm', spec, createdAt: 10 }, versionRecord('m', 1, weights(0), null, 10))
    await store.createModel({ name: 'n', spec: { ...spec, name: 'n' }, createdAt: 10 }, versionRecord('n', 1, weights(0), null, 10))
    const ids: number[] = []
    for (let i = 0; i < 5; i++) ids.push((await store.createRound(draft({ model: i % 2 === 0 ? 'm' : 'n' }))).id)
    expect((await store.listRounds({ limit: 10 })).map((r) => r.id)).toEqual([...ids].reverse())
    expect((await store.listRounds({ limit: 2 })).map((r) => r.id)).toEqual([ids[4], ids[3]])
    expect((await store.listRounds({ limit: 2, before: ids[3] })).map((r) => r.id)).toEqual([ids[2], ids[1]])
    expect((await store.listRounds({ limit: 10, model: 'n' })).map((r) => r.id)).toEqual([ids[3], ids[1]])
  })

  test('abortUnfinishedRounds marks only rounds without an outcome', async () => {
    const store = open()
    await store.createModel({ name: 'm', spec, createdAt: 10 }, versionRecord('m', 1, weights(0), null, 10))
    const done = await store.createRound(draft({ stage: 'done', outcome: 'aborted', reason: 'earlier', closedAt: 5 }))
    const selecting = await store.createRound(draft())
    const training = await store.createRound(draft({ stage: 'training', participants: 3, uploadsAccepted: 1 }))
    expect(await store.abortUnfinishedRounds('aggregator restarted', 777)).toEqual([selecting.id, training.id])
    expect(await store.getRound(done.id)).toEqual(done)
    expect(await store.getRound(training.id)).toEqual({
      ...training,
      stage: 'done',
      outcome: 'aborted',
      reason: 'aggregator restarted',
      closedAt: 777,
    })
    expect(await store.abortUnfinishedRounds('again', 778)).toEqual([])
  })
})

describe('SqliteStore on disk', () => {
  test('creates the file, uses WAL, records the schema version, and persists across opens', async () => {
    const dir = tempDir()
    cleanups.push(dir.remove)
    const file = join(dir.path, DATABASE_FILE)
    const first = SqliteStore.open(file)
    await first.createModel({ name: 'm', spec, createdAt: 10 }, versionRecord('m', 1, weights(3), null, 10))
    const round = await first.createRound(draft())
    await first.close()
    expect(existsSync(file)).toBe(true)

    const raw = new Database(file, { readonly: true })
    expect(raw.pragma('journal_mode', { simple: true })).toBe('wal')
    expect(raw.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION)
    // Nothing but aggregates and metadata: these are all the tables there are.
    const tables = raw.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all()
    expect(tables.map((t) => t.name)).toEqual(['model_versions', 'models', 'rounds'])
    raw.close()

    const second = SqliteStore.open(file)
    cleanups.push(() => second.close())
    expect(Array.from((await second.latestVersion('m'))!.weights)).toEqual(Array.from(weights(3)))
    expect(await second.getRound(round.id)).toEqual(round)
    // Ids are never reused, even across opens.
    expect((await second.createRound(draft())).id).toBe(round.id + 1)
  })

  test('refuses a database written by a newer build', () => {
    const dir = tempDir()
    cleanups.push(dir.remove)
    const file = join(dir.path, DATABASE_FILE)
    const raw = new Database(file)
    raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`)
    raw.close()
    expect(() => SqliteStore.open(file)).toThrow(/newer than this build/)
  })
})
