/**
 * Cluster mode: several aggregator processes on one PostgreSQL split each round's
 * secure-aggregation groups (`aggregator/cluster`). Devices connected to different replicas end
 * up in one published version, equal to the exact known answer computed from what they masked;
 * a replica that dies mid-round costs only its groups; a coordinator that dies has its round
 * aborted with the reason, and another replica takes over its lease.
 */
import pg from 'pg'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { parseStartArgs } from '../../aggregator/cli/aggregator-command.ts'
import { UsageError } from '../../aggregator/cli/command.ts'
import { resolveOptions } from '../../aggregator/options.ts'
import type { RoundOptions } from '../../aggregator/options.ts'
import type { RoundRecord } from '../../aggregator/store/store.ts'
import { APP_KEY, eventually, fetchWeights, getJson, knownDelta, listen, spawnAggregator, TINY } from './helpers.ts'
import type { ChildAggregator, RunningApp } from './helpers.ts'
import { freshSchema, PG_SKIP_REASON, PG_URL } from './pg.ts'
import type { PgSchema } from './pg.ts'
import { expectedWeights, SecAggDevice } from './secagg-exact-device.ts'

const TINY_ARG = `${TINY.name}:${TINY.mf.buckets}x${TINY.mf.dim}`
const CLIP_NORM = 2
const HEARTBEAT_MS = 100
// Generous: replicas share two cores with the devices' crypto in these tests.
const REPLICA_TIMEOUT_MS = 2_000

const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) {
    try {
      await cleanup()
    } catch {
      // a cleanup that fails must not hide the test's own failure, nor skip the others
    }
  }
})

function clusterRounds(minCohort: number, maxCohort: number): RoundOptions {
  return {
    minCohort,
    maxCohort,
    selectionTimeoutMs: 10_000,
    uploadTimeoutMs: 10_000,
    pauseMs: 60_000,
    aggregation: 'secagg',
    secagg: { variant: 'secagg', clipNorm: CLIP_NORM, stageTimeoutsMs: { 'advertise-keys': 5_000, 'share-keys': 5_000, unmasking: 5_000 } },
  }
}

async function replica(schema: PgSchema, minCohort: number, maxCohort: number): Promise<RunningApp> {
  const running = await listen({ store: { postgres: schema.url }, cluster: { heartbeatMs: HEARTBEAT_MS, replicaTimeoutMs: REPLICA_TIMEOUT_MS }, rounds: clusterRounds(minCohort, maxCohort) })
  cleanups.push(() => running.close())
  return running
}

/** A replica as its own process, started by the CLI. */
async function childReplica(schema: PgSchema, minCohort: number, maxCohort: number): Promise<ChildAggregator> {
  const child = await spawnAggregator([
    '--port', '0', '--postgres', schema.url, '--cluster', '--heartbeat', String(HEARTBEAT_MS), '--replica-timeout', String(REPLICA_TIMEOUT_MS),
    '--app-key', APP_KEY, '--model', TINY_ARG, '--aggregation', 'secagg', '--secagg-variant', 'secagg',
    '--secagg-clip-norm', String(CLIP_NORM), '--min-cohort', String(minCohort), '--max-cohort', String(maxCohort),
    '--selection-timeout', '10000', '--upload-timeout', '10000', '--pause', '60000',
  ])
  cleanups.push(() => {
    if (child.child.exitCode === null && child.child.signalCode === null) child.child.kill('SIGKILL')
  })
  return child
}

async function devices(wsUrl: string, from: number, count: number): Promise<SecAggDevice[]> {
  const joined = await Promise.all(Array.from({ length: count }, (_, k) => SecAggDevice.join(wsUrl, knownDelta(from + k))))
  cleanups.push(() => joined.forEach((d) => d.close()))
  return joined
}

async function round(url: string, id: number): Promise<RoundRecord> {
  return (await getJson<RoundRecord>(url, `/admin/rounds/${id}`)).body
}

/** How many models' coordinator leases were ever taken. */
async function leaseHolders(schema: PgSchema): Promise<number> {
  return count(schema, 'SELECT count(*)::integer AS n FROM cluster_leases')
}

/** Rows of the cluster tables still holding a group sum or a session pseudonym of an ended round. */
async function leftovers(schema: PgSchema): Promise<number> {
  return count(schema, 'SELECT count(*)::integer AS n FROM cluster_groups WHERE sum IS NOT NULL OR cardinality(sessions) > 0')
}

async function count(schema: PgSchema, sql: string): Promise<number> {
  const client = new pg.Client(schema.config)
  await client.connect()
  try {
    const { rows } = await client.query<{ n: number }>(sql)
    return rows[0]?.n ?? -1
  } finally {
    await client.end()
  }
}

describe('cluster options', () => {
  test('cluster mode needs PostgreSQL by URL and secure aggregation, and refuses DP for now', () => {
    const secagg = { aggregation: 'secagg' } as const
    expect(() => resolveOptions({ cluster: true, rounds: secagg })).toThrow(/cluster needs store: \{ postgres: url \}/)
    expect(() => resolveOptions({ cluster: true, store: { postgres: 'postgres://db/h' } })).toThrow(/cluster needs rounds.aggregation 'secagg'/)
    expect(() =>
      resolveOptions({ cluster: true, store: { postgres: 'postgres://db/h' }, rounds: { ...secagg, privacy: { mode: 'central', clipNorm: 1, noiseMultiplier: 1 } } }),
    ).toThrow(/cluster does not support rounds.privacy/)
    expect(resolveOptions({ cluster: { heartbeatMs: 200 }, store: { postgres: 'postgres://db/h' }, rounds: secagg }).cluster).toEqual({
      heartbeatMs: 200,
      replicaTimeoutMs: 1_000,
      postgres: 'postgres://db/h',
    })
    expect(resolveOptions({}).cluster).toBeNull()
  })

  test('--cluster and --heartbeat on the command line', () => {
    const options = (argv: string[]) => {
      const command = parseStartArgs(argv, {})
      if (command.help) throw new Error('unexpected --help')
      return command.options
    }
    expect(options(['--cluster']).cluster).toEqual({})
    expect(options(['--cluster', '--heartbeat', '250', '--replica-timeout', '3000']).cluster).toEqual({ heartbeatMs: 250, replicaTimeoutMs: 3_000 })
    expect(options([]).cluster).toBeUndefined()
    expect(() => parseStartArgs(['--heartbeat', '250'], {})).toThrow(UsageError)
  })
})

describe('several replicas on one PostgreSQL', () => {
  beforeEach((context) => {
    if (PG_URL === undefined) context.skip(PG_SKIP_REASON)
  })

  test('devices on two replicas end up in one version: base + the mean of what they masked, exactly', async () => {
    const schema = await freshSchema()
    cleanups.push(schema.drop)
    // Started together on an empty database: both create the model, one coordinates.
    const [a, b] = await Promise.all([replica(schema, 6, 6), replica(schema, 6, 6)])
    const coordinators = () => [a, b].filter((r) => r.app.hearth.cluster?.coordinating().includes(TINY.name) === true).length
    await eventually(() => coordinators() === 1, 5_000, 'one replica to coordinate')
    const onA = await devices(a.wsUrl, 0, 3)
    const onB = await devices(b.wsUrl, 3, 3)
    const all = [...onA, ...onB]
    const plans = await Promise.all(all.map((d) => d.plan()))
    const roundId = plans[0]!.roundId
    expect(new Set(plans.map((p) => p.roundId))).toEqual(new Set([roundId]))
    // A replica starting mid-round leaves the live round alone.
    await replica(schema, 6, 6)
    const results = await Promise.all(all.map((d, k) => d.run(plans[k]!)))
    for (const result of results) expect(result).toEqual({ type: 'round-result', roundId, outcome: 'published', version: 2 })

    const base = (await fetchWeights(a.url, TINY.name, 1)).values
    const expected = expectedWeights(base, all)
    for (const url of [a.url, b.url]) {
      const published = await fetchWeights(url, TINY.name, 'latest')
      expect(published.version).toBe(2)
      expect(Array.from(published.values)).toEqual(Array.from(expected))
    }
    // And that is base + the mean of the devices' deltas, up to one quantization step.
    const step = (2 * CLIP_NORM) / Math.floor((2 ** 32 - 1) / 3)
    for (let i = 0; i < base.length; i++) {
      const mean = all.reduce((s, d) => s + (d.delta[i] as number), 0) / all.length
      expect(Math.abs((expected[i] as number) - (base[i] as number) - mean)).toBeLessThanOrEqual(step + 2 ** -20)
    }

    const record = await round(b.url, roundId)
    expect(record).toMatchObject({ outcome: 'published', publishedVersion: 2, participants: 6, uploadsAccepted: 6, dropped: 0, eligible: 6 })
    expect(record.secagg?.maxSummands).toBe(3)
    expect(record.secagg?.groups.map((g) => ({ clients: g.clients, survivors: g.survivors, contributed: g.contributed }))).toEqual([
      { clients: 3, survivors: 3, contributed: true },
      { clients: 3, survivors: 3, contributed: true },
    ])
    // What the coordinator added: sums of at least t inputs each, never one device's update.
    for (const group of record.secagg?.groups ?? []) expect(group.survivors).toBeGreaterThanOrEqual(Math.max(2, group.threshold))
    expect(await leftovers(schema)).toBe(0)

    // A rollback on one replica is served by the other from its next heartbeat.
    const rollback = await fetch(`${b.url}/admin/models/${TINY.name}/rollback`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ toVersion: 1 }),
    })
    expect(rollback.status).toBe(200)
    await eventually(async () => (await fetchWeights(a.url, TINY.name, 'latest')).version === 3, 5_000, 'replica A to serve the rollback')
    expect(Array.from((await fetchWeights(a.url, TINY.name, 'latest')).values)).toEqual(Array.from(base))
  }, 60_000)

  test('a replica killed mid-round: its group counts as dropped and the round publishes from the others', async () => {
    const schema = await freshSchema()
    cleanups.push(schema.drop)
    const a = await replica(schema, 3, 6)
    await eventually(() => a.app.hearth.cluster?.coordinating().includes(TINY.name) === true, 5_000, 'replica A to coordinate')
    const b = await childReplica(schema, 3, 6)
    const onB = await devices(b.wsUrl, 3, 3)
    const onA = await devices(a.wsUrl, 0, 3)
    const plansA = await Promise.all(onA.map((d) => d.plan()))
    await Promise.all(onB.map((d) => d.plan()))
    b.child.kill('SIGKILL')
    const results = await Promise.all(onA.map((d, k) => d.run(plansA[k]!)))
    const roundId = plansA[0]!.roundId
    for (const result of results) expect(result).toEqual({ type: 'round-result', roundId, outcome: 'published', version: 2 })
    const base = (await fetchWeights(a.url, TINY.name, 1)).values
    expect(Array.from((await fetchWeights(a.url, TINY.name, 2)).values)).toEqual(Array.from(expectedWeights(base, onA)))
    const record = await round(a.url, roundId)
    expect(record).toMatchObject({ outcome: 'published', participants: 6, dropped: 3 })
    const lost = record.secagg?.groups.find((g) => !g.contributed)
    expect(lost?.reason).toMatch(/^HEARTH_ERR_REPLICA_LOST: replica [0-9a-f]+ stopped$/)
  }, 60_000)

  test('the coordinator killed mid-round: its round is aborted with the reason, another replica takes the lease and publishes the next', async () => {
    const schema = await freshSchema()
    cleanups.push(schema.drop)
    const a = await childReplica(schema, 6, 6)
    await eventually(async () => (await leaseHolders(schema)) === 1, 5_000, 'replica A to take the lease')
    const b = await replica(schema, 6, 6)
    const onA = await devices(a.wsUrl, 0, 3)
    const onB = await devices(b.wsUrl, 3, 3)
    const plans = await Promise.all([...onA, ...onB].map((d) => d.plan()))
    const roundId = plans[0]!.roundId
    expect(b.app.hearth.cluster?.coordinating()).toEqual([])
    a.child.kill('SIGKILL')

    // B's devices are told the round ended, with the reason; B now coordinates.
    const results = await Promise.all(onB.map((d, k) => d.run(plans[3 + k]!)))
    for (const result of results) {
      expect(result).toMatchObject({ type: 'round-result', roundId, outcome: 'aborted' })
      expect(result).toHaveProperty('reason', expect.stringMatching(/^HEARTH_ERR_REPLICA_LOST: the replica coordinating this round stopped/))
    }
    expect(b.app.hearth.cluster?.coordinating()).toEqual([TINY.name])
    expect(await round(b.url, roundId)).toMatchObject({ outcome: 'aborted', stage: 'done' })

    // The next round runs on B alone: its three devices and three more.
    const more = await devices(b.wsUrl, 6, 3)
    const next = [...onB, ...more]
    const nextPlans = await Promise.all(next.map((d) => d.plan()))
    expect(nextPlans[0]!.roundId).toBeGreaterThan(roundId)
    const nextResults = await Promise.all(next.map((d, k) => d.run(nextPlans[k]!)))
    for (const result of nextResults) expect(result).toMatchObject({ outcome: 'published', version: 2 })
    const base = (await fetchWeights(b.url, TINY.name, 1)).values
    expect(Array.from((await fetchWeights(b.url, TINY.name, 2)).values)).toEqual(Array.from(expectedWeights(base, next)))
    expect(await leftovers(schema)).toBe(0)
  }, 90_000)
})
