/**
 * The aggregator on PostgreSQL: `store: { postgres: url }` and the CLI's `--postgres` /
 * `HEARTH_POSTGRES_URL`. A round publishes through PgStore, and the version survives the process:
 * a second aggregator, started by the CLI on the same database, serves it; a round in flight
 * when the process is killed is aborted on the next start, as on SQLite (`durability.test.ts`).
 */
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { buildApp, RESTART_REASON } from '../../aggregator/app.ts'
import { parseStartArgs } from '../../aggregator/cli/aggregator-command.ts'
import { UsageError } from '../../aggregator/cli/command.ts'
import { resolveOptions } from '../../aggregator/options.ts'
import type { RoundRecord } from '../../aggregator/store/store.ts'
import { APP_KEY, fetchWeights, getJson, knownDelta, listen, spawnAggregator, TestClient, TINY } from './helpers.ts'
import type { RunningApp } from './helpers.ts'
import { freshSchema, PG_SKIP_REASON, PG_URL } from './pg.ts'

const TINY_ARG = `${TINY.name}:${TINY.mf.buckets}x${TINY.mf.dim}`

const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

describe('choosing PostgreSQL', () => {
  test('--postgres or HEARTH_POSTGRES_URL sets store.postgres; the flag wins; not with --data-dir', () => {
    const url = 'postgres://hearth:secret@db.internal:5432/hearth'
    const options = (argv: string[], env: NodeJS.ProcessEnv = {}) => {
      const command = parseStartArgs(argv, env)
      if (command.help) throw new Error('unexpected --help')
      return command.options
    }
    expect(options(['--postgres', url]).store).toEqual({ postgres: url })
    expect(options([], { HEARTH_POSTGRES_URL: url }).store).toEqual({ postgres: url })
    expect(options(['--postgres', 'postgres://flag/db'], { HEARTH_POSTGRES_URL: url }).store).toEqual({ postgres: 'postgres://flag/db' })
    expect(options([], { HEARTH_POSTGRES_URL: '' }).store).toBeUndefined()
    expect(() => parseStartArgs(['--postgres', url, '--data-dir', '/tmp/x'], {})).toThrow(UsageError)
  })

  test('resolveOptions refuses what is not a postgres:// URL', () => {
    expect(() => resolveOptions({ store: { postgres: 'db.internal:5432' } })).toThrow(/store.postgres must be a URL/)
    expect(resolveOptions({ store: { postgres: 'postgresql://db/hearth' } }).store).toEqual({ postgres: 'postgresql://db/hearth' })
  })
})

describe('an aggregator on PostgreSQL', () => {
  beforeEach((context) => {
    if (PG_URL === undefined) context.skip(PG_SKIP_REASON)
  })

  test('publishes a round through PgStore; after a restart the CLI serves the same version', async () => {
    const schema = await freshSchema()
    cleanups.push(schema.drop)
    let running: RunningApp | undefined = await listen({
      store: { postgres: schema.url },
      rounds: { minCohort: 2, maxCohort: 2, selectionTimeoutMs: 10_000, uploadTimeoutMs: 5_000, pauseMs: 60_000 },
    })
    cleanups.push(() => running?.close())
    const members = [await TestClient.checkedIn(running.wsUrl), await TestClient.checkedIn(running.wsUrl)]
    cleanups.push(() => members.forEach((client) => client.close()))
    const plans = await Promise.all(members.map((client) => client.next('round-plan')))
    const roundId = plans[0]!.roundId
    members.forEach((client, k) => client.upload(roundId, knownDelta(k)))
    for (const client of members) {
      expect(await client.next('round-result')).toEqual({ type: 'round-result', roundId, outcome: 'published', version: 2 })
    }
    const published = await fetchWeights(running.url, TINY.name, 'latest')
    expect(published.version).toBe(2)
    await running.close()
    running = undefined

    const child = await spawnAggregator(['--port', '0', '--postgres', schema.url, '--model', TINY_ARG, '--app-key', APP_KEY])
    cleanups.push(() => {
      if (child.child.exitCode === null) child.child.kill('SIGKILL')
    })
    const restarted = await fetchWeights(child.url, TINY.name, 'latest')
    expect(restarted.version).toBe(2)
    expect(Array.from(restarted.values)).toEqual(Array.from(published.values))
    const round = await getJson<RoundRecord>(child.url, `/admin/rounds/${roundId}`)
    expect(round.body).toMatchObject({ id: roundId, outcome: 'published', publishedVersion: 2, uploadsAccepted: 2 })
    child.child.kill('SIGINT')
    expect(await child.exited).toEqual({ code: 0, signal: null })
  }, 90_000)

  test('a round in flight when the process is killed is aborted, with its reason, on the next start', async () => {
    const schema = await freshSchema()
    cleanups.push(schema.drop)
    const child = await spawnAggregator([
      '--port', '0', '--postgres', schema.url, '--app-key', APP_KEY, '--model', TINY_ARG,
      '--min-cohort', '1', '--max-cohort', '1', '--selection-timeout', '10', '--upload-timeout', '60000',
    ])
    cleanups.push(() => {
      if (child.child.exitCode === null && child.child.signalCode === null) child.child.kill('SIGKILL')
    })
    const client = await TestClient.checkedIn(child.wsUrl)
    cleanups.push(() => client.close())
    const plan = await client.next('round-plan')
    child.child.kill('SIGKILL')
    expect((await child.exited).signal).toBe('SIGKILL')

    const app = await buildApp({ store: { postgres: schema.url }, models: [TINY], appKeys: [APP_KEY] })
    cleanups.push(() => app.close())
    expect(await app.hearth.store.getRound(plan.roundId)).toMatchObject({ stage: 'done', outcome: 'aborted', reason: RESTART_REASON, participants: 1 })
    expect(app.hearth.registry.latest(TINY.name).version).toBe(1)
  }, 90_000)
})
