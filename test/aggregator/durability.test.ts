import { afterEach, describe, expect, test } from 'vitest'
import { buildApp, RESTART_REASON } from '../../aggregator/app.ts'
import { SHUTDOWN_REASON } from '../../aggregator/rounds/engine.ts'
import type { RoundRecord } from '../../aggregator/store/store.ts'
import { ROUTES } from '../../protocol/messages.ts'
import { APP_KEY, fetchWeights, knownDelta, listen, spawnAggregator, tempDir, TestClient, TINY } from './helpers.ts'
import type { ChildAggregator } from './helpers.ts'

const cleanups: (() => unknown)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

const TINY_ARG = `${TINY.name}:${TINY.mf.buckets}x${TINY.mf.dim}`

function track(child: ChildAggregator): ChildAggregator {
  cleanups.push(() => {
    if (child.child.exitCode === null && child.child.signalCode === null) child.child.kill('SIGKILL')
  })
  return child
}

describe('durability with a real SQLite file', () => {
  test('models, versions and round history survive a restart', async () => {
    const dir = tempDir()
    cleanups.push(dir.remove)
    const rounds = { minCohort: 2, maxCohort: 2, selectionTimeoutMs: 10_000, uploadTimeoutMs: 5_000, pauseMs: 60_000 }

    const first = await listen({ dataDir: dir.path, rounds })
    const base = await fetchWeights(first.url, TINY.name, 1)
    const members = [await TestClient.checkedIn(first.wsUrl), await TestClient.checkedIn(first.wsUrl)]
    const plan = await members[0]!.next('round-plan')
    members.forEach((c, k) => c.upload(plan.roundId, knownDelta(k)))
    expect((await members[0]!.next('round-result')).version).toBe(2)
    const v2 = await fetchWeights(first.url, TINY.name, 'latest')
    const etag = (await fetch(first.url + ROUTES.modelVersion(TINY.name, 2))).headers.get('etag')
    for (const c of members) c.close()
    await first.close()

    const second = await listen({ dataDir: dir.path, rounds })
    cleanups.push(() => second.close())
    const latest = await fetchWeights(second.url, TINY.name, 'latest')
    expect(latest.version).toBe(2)
    expect(Array.from(latest.values)).toEqual(Array.from(v2.values))
    expect(Array.from((await fetchWeights(second.url, TINY.name, 1)).values)).toEqual(Array.from(base.values))
    expect((await fetch(second.url + ROUTES.modelVersion(TINY.name, 2))).headers.get('etag')).toBe(etag)

    const record = (await (await fetch(`${second.url}/admin/rounds/${plan.roundId}`)).json()) as RoundRecord
    expect(record).toMatchObject({ outcome: 'published', publishedVersion: 2, uploadsAccepted: 2, participants: 2 })

    // The old round's id is known but closed; new rounds get fresh ids and start from v2.
    const client = await TestClient.checkedIn(second.wsUrl)
    cleanups.push(() => client.close())
    client.upload(plan.roundId, knownDelta(0))
    await client.error('HEARTH_ERR_ROUND_CLOSED')
    const other = await TestClient.checkedIn(second.wsUrl)
    cleanups.push(() => other.close())
    const next = await client.next('round-plan')
    expect(next.roundId).toBeGreaterThan(plan.roundId)
    expect(next.baseVersion).toBe(2)
  })

  test('a stored model with different options is refused rather than served wrong', async () => {
    const dir = tempDir()
    cleanups.push(dir.remove)
    const app = await buildApp({ dataDir: dir.path, models: [TINY] })
    await app.close()
    await expect(buildApp({ dataDir: dir.path, models: [{ name: TINY.name, mf: { buckets: 8, dim: 2 } }] })).rejects.toMatchObject({
      code: 'HEARTH_ERR_INVALID_CONFIG',
    })
  })

  test('a round in flight when the process is killed is aborted on the next start', async () => {
    const dir = tempDir()
    cleanups.push(dir.remove)
    const child = track(
      await spawnAggregator([
        '--port', '0', '--data-dir', dir.path, '--app-key', APP_KEY, '--model', TINY_ARG,
        '--min-cohort', '1', '--max-cohort', '1', '--selection-timeout', '10', '--upload-timeout', '60000',
      ]),
    )
    const client = await TestClient.checkedIn(child.wsUrl)
    cleanups.push(() => client.close())
    const plan = await client.next('round-plan')
    child.child.kill('SIGKILL')
    expect((await child.exited).signal).toBe('SIGKILL')

    const app = await buildApp({ dataDir: dir.path, models: [TINY], appKeys: [APP_KEY] })
    cleanups.push(() => app.close())
    const response = await app.inject({ method: 'GET', url: `/admin/rounds/${plan.roundId}` })
    expect(response.json()).toMatchObject({ id: plan.roundId, stage: 'done', outcome: 'aborted', reason: RESTART_REASON, participants: 1 })
    expect(app.hearth.registry.latest(TINY.name).version).toBe(1)
  }, 90_000)

  test('SIGTERM tells participants, records the round as aborted and exits 0', async () => {
    const dir = tempDir()
    cleanups.push(dir.remove)
    const child = track(
      await spawnAggregator([
        '--port', '0', '--data-dir', dir.path, '--app-key', APP_KEY, '--model', TINY_ARG,
        '--min-cohort', '2', '--max-cohort', '2', '--selection-timeout', '10', '--upload-timeout', '60000',
      ]),
    )
    const clients = [await TestClient.checkedIn(child.wsUrl), await TestClient.checkedIn(child.wsUrl)]
    cleanups.push(() => clients.forEach((c) => c.close()))
    const plan = await clients[0]!.next('round-plan')
    clients[0]!.upload(plan.roundId, knownDelta(0))
    await clients[0]!.next('upload-accepted')
    child.child.kill('SIGTERM')
    for (const client of clients) {
      expect(await client.next('round-result')).toEqual({ type: 'round-result', roundId: plan.roundId, outcome: 'aborted', reason: SHUTDOWN_REASON })
      expect(await client.closed).toEqual({ code: 1001, reason: SHUTDOWN_REASON })
    }
    expect(await child.exited).toEqual({ code: 0, signal: null })
    expect(child.output()).toMatch(/closing: finishing or aborting the running rounds/)

    const app = await buildApp({ dataDir: dir.path, models: [TINY], appKeys: [APP_KEY] })
    cleanups.push(() => app.close())
    expect(await app.hearth.store.getRound(plan.roundId)).toMatchObject({ outcome: 'aborted', reason: SHUTDOWN_REASON, uploadsAccepted: 1 })
  }, 90_000)

  test('closing with minCohort uploads already accepted publishes them instead of dropping them', async () => {
    const dir = tempDir()
    cleanups.push(dir.remove)
    const running = await listen({
      dataDir: dir.path,
      rounds: { minCohort: 2, maxCohort: 3, selectionTimeoutMs: 10_000, uploadTimeoutMs: 60_000, pauseMs: 60_000 },
    })
    const clients = [] as TestClient[]
    for (let i = 0; i < 3; i++) clients.push(await TestClient.checkedIn(running.wsUrl))
    cleanups.push(() => clients.forEach((c) => c.close()))
    const plan = await clients[0]!.next('round-plan')
    clients[0]!.upload(plan.roundId, knownDelta(0))
    clients[1]!.upload(plan.roundId, knownDelta(1))
    await clients[0]!.next('upload-accepted')
    await clients[1]!.next('upload-accepted')
    await running.close()
    for (const client of clients) expect(await client.next('round-result')).toMatchObject({ outcome: 'published', version: 2 })

    const app = await buildApp({ dataDir: dir.path, models: [TINY] })
    cleanups.push(() => app.close())
    expect(app.hearth.registry.latest(TINY.name).version).toBe(2)
    expect(await app.hearth.store.getRound(plan.roundId)).toMatchObject({
      outcome: 'published',
      reason: `uploads closed early: ${SHUTDOWN_REASON}`,
      participants: 3,
      uploadsAccepted: 2,
    })
  })
})
