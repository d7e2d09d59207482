import { existsSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import pg from 'pg'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { versionRecord } from '../../aggregator/models/weights.ts'
import { MemoryStore } from '../../aggregator/store/memory-store.ts'
import { MIGRATIONS, SCHEMA_VERSION } from '../../aggregator/store/migrations.ts'
import { PgStore } from '../../aggregator/store/pg-store.ts'
import { DATABASE_FILE, SqliteStore } from '../../aggregator/store/sqlite-store.ts'
import { freshRound } from '../../aggregator/store/store.ts'
import type { AggregatorStore, NewRound, OptimizerStateRecord, PrivacyCommit, RoundPrivacyRecord, RoundRecord } from '../../aggregator/store/store.ts'
import { HearthError } from '../../protocol/errors.ts'
import { mfSpec } from '../../protocol/model-spec.ts'
import { tempDir } from './helpers.ts'
import { freshSchema, PG_SKIP_REASON, PG_URL } from './pg.ts'

const spec = mfSpec('m', { buckets: 2, dim: 1 }) // 2 + 2 + 1 + 1 = 6 weights
const weights = (seed: number) => Float32Array.from({ length: 6 }, (_, i) => seed + i / 8)

function draft(overrides: Partial<NewRound> = {}): NewRound {
  return freshRound({
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
    ...overrides,
  })
}

const PRIVACY: RoundPrivacyRecord = {
  mode: 'central',
  trustAssumption: 'central DP trusts the aggregator',
  sampling: 'uniform',
  samplingRate: 1,
  clipNorm: 0.5,
  noiseMultiplier: 2,
  effectiveNoiseMultiplier: 1.9999,
  denominator: 5,
  adaptiveClipping: { targetQuantile: 0.5, learningRate: 0.2, countNoise: 1.25, deltaNoiseMultiplier: 2.1 },
  budget: { epsilon: 8, delta: 1e-6 },
  event: { kind: 'sampled-gaussian', samplingRate: 1, noiseMultiplier: 1.9999 },
  epsilonBefore: 0,
  epsilonIfPublished: 1.25,
  clipping: null,
}

/** The ledger entry and state of a published DP round, as ModelPrivacy builds them. */
function commitFor(round: RoundRecord, version: number, epsilon: number, nextClipNorm: number): PrivacyCommit {
  const { event, epsilonBefore: _b, epsilonIfPublished: _a, clipping: _c, ...parameters } = PRIVACY
  return {
    entry: {
      ...parameters,
      model: round.model,
      roundId: round.id,
      version,
      recordedAt: 20 + version,
      event,
      count: 1,
      rounds: version - 1,
      epsilon,
      order: 12.5,
      clipping: { uploads: 4, clippedCount: null, clippedFraction: 0.25, noised: true, nextClipNorm },
    },
    state: { model: round.model, clipNorm: nextClipNorm, refusal: null },
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

/** Each implementation, how to open an empty one, and why it is skipped (undefined: it runs). */
const implementations: [string, () => Promise<AggregatorStore>, string | undefined][] = [
  ['MemoryStore', async () => new MemoryStore(), undefined],
  [
    'SqliteStore',
    async () => {
      const dir = tempDir()
      cleanups.push(dir.remove)
      return SqliteStore.open(join(dir.path, DATABASE_FILE))
    },
    undefined,
  ],
  [
    'PgStore',
    async () => {
      const schema = await freshSchema()
      cleanups.push(schema.drop)
      return PgStore.connect(schema.config)
    },
    PG_URL === undefined ? PG_SKIP_REASON : undefined,
  ],
]

/** Opens an empty store, closed after the test; skips the test with the reason when one is given. */
function opener(create: () => Promise<AggregatorStore>, skipReason: string | undefined): () => Promise<AggregatorStore> {
  beforeEach((context) => {
    if (skipReason !== undefined) context.skip(skipReason)
  })
  return async () => {
    const store = await create()
    cleanups.push(() => store.close())
    return store
  }
}

describe.each(implementations)('AggregatorStore contract: %s', (_name, create, skipReason) => {
  const open = opener(create, skipReason)

  test('models: created with version 1, atomically, names unique', async () => {
    const store = await open()
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
    const store = await open()
    await store.createModel({ name: 'm', spec, createdAt: 10 }, versionRecord('m', 1, weights(0), null, 10))
    const read = (await store.latestVersion('m'))!
    read.weights.fill(99)
    expect(Array.from((await store.latestVersion('m'))!.weights)).toEqual(Array.from(weights(0)))
  })

  test('rounds: ids increase, records round-trip, updates replace', async () => {
    const store = await open()
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
    const store = await open()
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
    const store = await open()
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
    const store = await open()
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

describe.each(implementations)('AggregatorStore contract, privacy: %s', (_name, create, skipReason) => {
  const open = opener(create, skipReason)

  async function withModels(): Promise<AggregatorStore> {
    const store = await open()
    await store.createModel({ name: 'm', spec, createdAt: 10 }, versionRecord('m', 1, weights(0), null, 10))
    await store.createModel({ name: 'n', spec: { ...spec, name: 'n' }, createdAt: 10 }, versionRecord('n', 1, weights(0), null, 10))
    return store
  }

  const published = (round: RoundRecord, version: number): RoundRecord => ({
    ...round,
    stage: 'done',
    outcome: 'published',
    reason: 'ok',
    closedAt: 20,
    publishedVersion: version,
  })

  test('the privacy record of a round round-trips', async () => {
    const store = await withModels()
    const round = await store.createRound(draft({ privacy: PRIVACY, config: { ...draft().config, sampling: { kind: 'poisson', rate: 0.25 } } }))
    expect(await store.getRound(round.id)).toEqual(round)
    const later = { ...round, privacy: { ...PRIVACY, clipping: { uploads: 3, clippedCount: 1, clippedFraction: 1 / 3, noised: false, nextClipNorm: 0.5 } } }
    await store.updateRound(later)
    expect(await store.getRound(round.id)).toEqual(later)
  })

  test('the secure-aggregation record of a round round-trips', async () => {
    const store = await withModels()
    const group = { groupId: 0, clients: 5, degree: 4, threshold: 3, state: 'completed', advertised: 5, shared: 5, masked: 4, unmasked: 4, survivors: 4, contributed: true, reason: null }
    const secagg = { variant: 'secagg+' as const, clipNorm: 10, modulusBits: 32, maxSummands: 5, expectedDropout: 0.1, corruptFraction: 0.05, groups: [group] }
    const round = await store.createRound(draft({ secagg }))
    expect(await store.getRound(round.id)).toEqual(round)
    const later = { ...round, secagg: { ...secagg, groups: [group, { ...group, groupId: 1, state: 'aborted', survivors: 0, contributed: false, reason: 'HEARTH_ERR_SECAGG_THRESHOLD: too few' }] } }
    await store.updateRound(later)
    expect(await store.getRound(round.id)).toEqual(later)
  })

  test('publishRound appends the ledger entry and saves the state with the version, in order, per model', async () => {
    const store = await withModels()
    expect(await store.listLedger('m')).toEqual([])
    expect(await store.getPrivacyState('m')).toBeUndefined()
    const r1 = await store.createRound(draft({ privacy: PRIVACY }))
    const c1 = commitFor(r1, 2, 1.25, 0.6)
    await store.publishRound(published(r1, 2), versionRecord('m', 2, weights(1), r1.id, 20), c1)
    const r2 = await store.createRound(draft({ privacy: PRIVACY }))
    const c2 = commitFor(r2, 3, 1.75, 0.7)
    await store.publishRound(published(r2, 3), versionRecord('m', 3, weights(2), r2.id, 21), c2)
    const ledger = await store.listLedger('m')
    expect(ledger.map(({ id: _id, ...entry }) => entry)).toEqual([c1.entry, c2.entry])
    expect(ledger[1]!.id).toBeGreaterThan(ledger[0]!.id)
    expect(await store.getPrivacyState('m')).toEqual(c2.state)
    expect(await store.listLedger('n')).toEqual([])
    expect(await store.listLedger('unknown')).toEqual([])
    // Copies out: changing what was read changes nothing stored.
    ;(ledger[0]!.budget as { epsilon: number }).epsilon = 99
    expect((await store.listLedger('m'))[0]!.budget.epsilon).toBe(8)
  })

  test('a publish that fails writes no ledger entry; entries must name their round and version', async () => {
    const store = await withModels()
    const r1 = await store.createRound(draft({ privacy: PRIVACY }))
    await store.publishRound(published(r1, 2), versionRecord('m', 2, weights(1), r1.id, 20), commitFor(r1, 2, 1, 0.6))
    const r2 = await store.createRound(draft({ privacy: PRIVACY }))
    // Version 2 exists: the whole publish fails, the ledger and the state are as before.
    await expectCode(store.publishRound(published(r2, 2), versionRecord('m', 2, weights(3), r2.id, 30), commitFor(r2, 2, 2, 0.9)), 'HEARTH_ERR_ROUND_FAILED')
    expect(await store.listLedger('m')).toHaveLength(1)
    expect((await store.getPrivacyState('m'))?.clipNorm).toBe(0.6)
    const wrongRound = commitFor({ ...r2, id: r1.id }, 3, 2, 0.9)
    await expect(store.publishRound(published(r2, 3), versionRecord('m', 3, weights(3), r2.id, 30), wrongRound)).rejects.toThrow(RangeError)
    const wrongVersion = commitFor(r2, 4, 2, 0.9)
    await expect(store.publishRound(published(r2, 3), versionRecord('m', 3, weights(3), r2.id, 30), wrongVersion)).rejects.toThrow(RangeError)
    expect(await store.listLedger('m')).toHaveLength(1)
    expect(await store.latestVersion('m')).toMatchObject({ version: 2 })
  })

  test('privacy state: set and read back, only for a known model', async () => {
    const store = await withModels()
    const refusal = { code: 'HEARTH_ERR_PRIVACY_BUDGET_EXCEEDED' as const, reason: 'epsilon would reach 9 > 8', at: 123 }
    await store.setPrivacyState({ model: 'm', clipNorm: null, refusal })
    expect(await store.getPrivacyState('m')).toEqual({ model: 'm', clipNorm: null, refusal })
    await store.setPrivacyState({ model: 'm', clipNorm: 0.25, refusal: null })
    expect(await store.getPrivacyState('m')).toEqual({ model: 'm', clipNorm: 0.25, refusal: null })
    expect(await store.getPrivacyState('n')).toBeUndefined()
    await expectCode(store.setPrivacyState({ model: 'unknown', clipNorm: null, refusal: null }), 'HEARTH_ERR_UNKNOWN_MODEL')
  })
})

describe.each(implementations)('AggregatorStore contract, versions and audit log: %s', (_name, create, skipReason) => {
  const open = opener(create, skipReason)

  async function withModel(): Promise<AggregatorStore> {
    const store = await open()
    await store.createModel({ name: 'm', spec, createdAt: 10 }, versionRecord('m', 1, weights(0), null, 10))
    return store
  }

  const rollbackEntry = (to: number, created: number) => ({
    at: 50,
    actor: 'admin:alice',
    action: 'model.rollback',
    subject: 'model/m',
    details: { fromVersion: created - 1, toVersion: to, newVersion: created, nested: { list: [1, 'two', null] } },
  })

  test('publishVersion adds a round-less version and its audit entry together', async () => {
    const store = await withModel()
    const round = await store.createRound(draft())
    const done = { ...round, stage: 'done' as const, outcome: 'published' as const, reason: 'ok', closedAt: 20, publishedVersion: 2 }
    await store.publishRound(done, versionRecord('m', 2, weights(5), round.id, 20))
    const v3 = versionRecord('m', 3, weights(0), null, 50)
    const entry = await store.publishVersion(v3, rollbackEntry(1, 3))
    expect(entry).toEqual({ ...rollbackEntry(1, 3), id: entry.id })
    expect(await store.latestVersion('m')).toEqual(v3)
    expect(await store.listAudit({ limit: 10 })).toEqual([entry])

    // A taken number, a version naming a round, an unknown model: refused, nothing written.
    await expectCode(store.publishVersion(versionRecord('m', 3, weights(9), null, 60), rollbackEntry(2, 3)), 'HEARTH_ERR_ROUND_FAILED')
    await expect(store.publishVersion(versionRecord('m', 4, weights(9), round.id, 60), rollbackEntry(2, 4))).rejects.toThrow(RangeError)
    await expect(store.publishVersion(versionRecord('x', 1, weights(9), null, 60), rollbackEntry(2, 1))).rejects.toThrow(HearthError)
    expect(await store.latestVersion('m')).toEqual(v3)
    expect(await store.listAudit({ limit: 10 })).toEqual([entry])
  })

  test('listVersions: newest first, without weights, keyset pages', async () => {
    const store = await withModel()
    await store.publishVersion(versionRecord('m', 2, weights(2), null, 20), rollbackEntry(1, 2))
    await store.publishVersion(versionRecord('m', 3, weights(3), null, 30), rollbackEntry(1, 3))
    const all = await store.listVersions({ model: 'm', limit: 10 })
    const { weights: _w, ...summary } = versionRecord('m', 3, weights(3), null, 30)
    expect(all[0]).toEqual(summary)
    expect(all.map((v) => v.version)).toEqual([3, 2, 1])
    expect((await store.listVersions({ model: 'm', limit: 1, before: 3 })).map((v) => v.version)).toEqual([2])
    expect(await store.listVersions({ model: 'unknown', limit: 10 })).toEqual([])
  })

  test('the audit log appends with increasing ids and pages newest first', async () => {
    const store = await open()
    expect(await store.listAudit({ limit: 10 })).toEqual([])
    const entries = []
    for (let i = 0; i < 5; i++) {
      entries.push(await store.appendAudit({ at: 100 + i, actor: 'system', action: 'round.published', subject: `round/${i}`, details: { participants: i, event: null } }))
    }
    for (let i = 1; i < entries.length; i++) expect(entries[i]!.id).toBeGreaterThan(entries[i - 1]!.id)
    expect(await store.listAudit({ limit: 10 })).toEqual([...entries].reverse())
    expect(await store.listAudit({ limit: 2 })).toEqual([entries[4], entries[3]])
    expect(await store.listAudit({ limit: 2, before: entries[3]!.id })).toEqual([entries[2], entries[1]])
    // Copies out.
    const read = await store.listAudit({ limit: 1 })
    ;(read[0]!.details as { participants: number }).participants = 99
    expect((await store.listAudit({ limit: 1 }))[0]!.details).toEqual({ participants: 4, event: null })
    // Append-only by construction: the interface has no way to change or remove an entry.
    const methods = Object.getOwnPropertyNames(Object.getPrototypeOf(store)).filter((name) => /audit/i.test(name))
    expect(methods.sort()).toEqual(['appendAudit', 'listAudit'])
  })
})

describe.each(implementations)('AggregatorStore contract, optimizer state: %s', (_name, create, skipReason) => {
  const open = opener(create, skipReason)

  // Values float32 cannot hold, a negative zero and a subnormal: the moments must come back bit for bit.
  const moments = (seed: number): Float64Array => Float64Array.from([seed + 0.1, -0, 5e-324, Math.PI * seed, 1 / 3, -1e300])
  const stateFor = (version: number, seed: number): OptimizerStateRecord => ({ model: 'm', version, optimizer: 'fedadam', rounds: version - 1, m: moments(seed), v: moments(seed + 1) })
  const bits = (values: Float64Array): string => Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString('hex')
  const finished = (round: RoundRecord, version: number): RoundRecord => ({ ...round, stage: 'done', outcome: 'published', reason: 'ok', closedAt: 20, publishedVersion: version })

  async function withModel(): Promise<AggregatorStore> {
    const store = await open()
    await store.createModel({ name: 'm', spec, createdAt: 10 }, versionRecord('m', 1, weights(0), null, 10))
    return store
  }

  test('publishRound stores the state with its version; it reads back exactly, per version, as a copy', async () => {
    const store = await withModel()
    expect(await store.getOptimizerState('m', 1)).toBeUndefined()
    const r1 = await store.createRound(draft())
    await store.publishRound(finished(r1, 2), versionRecord('m', 2, weights(1), r1.id, 20), undefined, stateFor(2, 1))
    const r2 = await store.createRound(draft())
    await store.publishRound(finished(r2, 3), versionRecord('m', 3, weights(2), r2.id, 21), undefined, stateFor(3, 2))

    const read = (await store.getOptimizerState('m', 2))!
    expect({ ...read, m: bits(read.m), v: bits(read.v) }).toEqual({ ...stateFor(2, 1), m: bits(moments(1)), v: bits(moments(2)) })
    expect(read.m).toBeInstanceOf(Float64Array)
    expect(bits((await store.getOptimizerState('m', 3))!.m)).toBe(bits(moments(2)))
    read.m.fill(7)
    expect(bits((await store.getOptimizerState('m', 2))!.m)).toBe(bits(moments(1)))
    expect(await store.getOptimizerState('m', 4)).toBeUndefined()
    expect(await store.getOptimizerState('unknown', 2)).toBeUndefined()
  })

  test('a publish that fails stores no state; a state must name its version and fit the weights', async () => {
    const store = await withModel()
    const r1 = await store.createRound(draft())
    await store.publishRound(finished(r1, 2), versionRecord('m', 2, weights(1), r1.id, 20), undefined, stateFor(2, 1))
    // A second claim on version 2 fails as a whole: neither its version nor its state is stored.
    const r2 = await store.createRound(draft())
    await expectCode(store.publishRound(finished(r2, 2), versionRecord('m', 2, weights(3), r2.id, 30), undefined, stateFor(2, 9)), 'HEARTH_ERR_ROUND_FAILED')
    expect(bits((await store.getOptimizerState('m', 2))!.m)).toBe(bits(moments(1)))

    const v3 = versionRecord('m', 3, weights(3), r2.id, 30)
    await expect(store.publishRound(finished(r2, 3), v3, undefined, stateFor(2, 3))).rejects.toThrow(RangeError)
    await expect(store.publishRound(finished(r2, 3), v3, undefined, { ...stateFor(3, 3), m: new Float64Array(5) })).rejects.toThrow(RangeError)
    expect(await store.latestVersion('m')).toMatchObject({ version: 2 })
    expect(await store.getOptimizerState('m', 3)).toBeUndefined()
  })

  test('a version published without state (FedAvg, a rollback) has none', async () => {
    const store = await withModel()
    const r1 = await store.createRound(draft())
    await store.publishRound(finished(r1, 2), versionRecord('m', 2, weights(1), r1.id, 20))
    await store.publishVersion(versionRecord('m', 3, weights(0), null, 30), { at: 30, actor: 'admin', action: 'model.rollback', subject: 'model/m', details: {} })
    expect(await store.getOptimizerState('m', 2)).toBeUndefined()
    expect(await store.getOptimizerState('m', 3)).toBeUndefined()
  })
})

describe('PgStore audit log', () => {
  beforeEach((context) => {
    if (PG_URL === undefined) context.skip(PG_SKIP_REASON)
  })

  test('a trigger refuses UPDATE, DELETE and TRUNCATE of the audit log', async () => {
    const schema = await freshSchema()
    cleanups.push(schema.drop)
    const store = await PgStore.connect(schema.config)
    cleanups.push(() => store.close())
    await store.appendAudit({ at: 1, actor: 'system', action: 'round.aborted', subject: 'round/1', details: {} })
    const client = new pg.Client(schema.config)
    await client.connect()
    cleanups.push(() => client.end())
    await expect(client.query("UPDATE audit_log SET actor = 'mallory'")).rejects.toThrow(/append-only/)
    await expect(client.query('DELETE FROM audit_log')).rejects.toThrow(/append-only/)
    await expect(client.query('TRUNCATE audit_log')).rejects.toThrow(/append-only/)
    expect((await store.listAudit({ limit: 10 })).map((e) => e.actor)).toEqual(['system'])
  })
})

describe('SqliteStore on disk', () => {
  test('a trigger refuses UPDATE and DELETE of the audit log', async () => {
    const dir = tempDir()
    cleanups.push(dir.remove)
    const file = join(dir.path, DATABASE_FILE)
    const store = SqliteStore.open(file)
    cleanups.push(() => store.close())
    await store.appendAudit({ at: 1, actor: 'system', action: 'round.aborted', subject: 'round/1', details: {} })
    const raw = new Database(file)
    cleanups.push(() => void raw.close())
    expect(() => raw.prepare("UPDATE audit_log SET actor = 'mallory'").run()).toThrow(/append-only/)
    expect(() => raw.prepare('DELETE FROM audit_log').run()).toThrow(/append-only/)
    expect((await store.listAudit({ limit: 10 })).map((e) => e.actor)).toEqual(['system'])
  })

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
    // Nothing but aggregates (weights and optimizer moments), metadata, the privacy ledger and the audit log: these are all the tables there are.
    const tables = raw.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all()
    expect(tables.map((t) => t.name)).toEqual(['audit_log', 'model_versions', 'models', 'optimizer_state', 'privacy_ledger', 'privacy_state', 'rounds'])
    raw.close()

    const second = SqliteStore.open(file)
    cleanups.push(() => second.close())
    expect(Array.from((await second.latestVersion('m'))!.weights)).toEqual(Array.from(weights(3)))
    expect(await second.getRound(round.id)).toEqual(round)
    // Ids are never reused, even across opens.
    expect((await second.createRound(draft())).id).toBe(round.id + 1)
  })

  test('migrates a version 1 database: old rounds read back without privacy', async () => {
    const dir = tempDir()
    cleanups.push(dir.remove)
    const file = join(dir.path, DATABASE_FILE)
    const raw = new Database(file)
    raw.exec(MIGRATIONS[0]!.sql)
    raw.pragma('user_version = 1')
    raw.prepare("INSERT INTO models (name, spec, created_at) VALUES ('m', ?, 10)").run(JSON.stringify(spec))
    const config = JSON.stringify(draft().config)
    raw.prepare("INSERT INTO rounds (model, base_version, stage, config, created_at) VALUES ('m', 1, 'selection', ?, 5)").run(config)
    raw.close()
    const store = SqliteStore.open(file)
    cleanups.push(() => store.close())
    const round = await store.getRound(1)
    expect(round).toMatchObject({ id: 1, privacy: null, secagg: null, config: draft().config })
    expect(round?.config.sampling).toBeUndefined()
    expect(await store.listLedger('m')).toEqual([])
  })

  test('openReadOnly reads without writing, and refuses another schema version', async () => {
    const dir = tempDir()
    cleanups.push(dir.remove)
    const file = join(dir.path, DATABASE_FILE)
    expect(() => SqliteStore.openReadOnly(file)).toThrow()
    expect(existsSync(file)).toBe(false)
    const writer = SqliteStore.open(file)
    await writer.createModel({ name: 'm', spec, createdAt: 10 }, versionRecord('m', 1, weights(0), null, 10))
    // Read while the writer is open (WAL), as the CLI does next to a running aggregator.
    const reader = SqliteStore.openReadOnly(file)
    expect(await reader.getModel('m')).toMatchObject({ name: 'm' })
    await expect(reader.setPrivacyState({ model: 'm', clipNorm: 1, refusal: null })).rejects.toThrow(/readonly/)
    await reader.close()
    await writer.close()
    const raw = new Database(file)
    raw.pragma('user_version = 1')
    raw.close()
    expect(() => SqliteStore.openReadOnly(file)).toThrow(/schema is version 1/)
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
