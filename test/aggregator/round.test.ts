import { describe, expect, test } from 'vitest'
import { PROTOCOL_VERSION } from '../../protocol/messages.ts'
import type { RoundRecord } from '../../aggregator/store/store.ts'
import { MemoryStore } from '../../aggregator/store/memory-store.ts'
import { eventually, fetchWeights, getJson, knownDelta, TestClient, TINY, TINY_LENGTH, useApp } from './helpers.ts'

const server = useApp()

/** base + mean of deltas, computed here in float64 and rounded once to float32. */
function expectedWeights(base: Float32Array, deltas: Float32Array[]): Float32Array {
  const out = new Float32Array(base.length)
  for (let i = 0; i < base.length; i++) {
    let sum = 0
    for (const delta of deltas) sum += delta[i] as number
    out[i] = (base[i] as number) + sum / deltas.length
  }
  return out
}

describe('a full round over real sockets', () => {
  test('4 clients upload known deltas; the published version is base + their mean', async () => {
    // maxCohort = number of clients: selection closes the moment the 4th checks in.
    const running = await server.start({
      store: new MemoryStore(),
      rounds: { minCohort: 3, maxCohort: 4, selectionTimeoutMs: 10_000, uploadTimeoutMs: 5_000, pauseMs: 60_000 },
    })
    const { url, wsUrl, app } = running
    const base = await fetchWeights(url, TINY.name, 'latest')
    expect(base.version).toBe(1)
    expect(base.values.length).toBe(TINY_LENGTH)

    const members = await server.join(wsUrl, 4)
    const plans = await Promise.all(members.map((c) => c.next('round-plan')))
    const roundId = plans[0]!.roundId
    for (const plan of plans) {
      expect(plan).toMatchObject({ roundId, model: TINY.name, baseVersion: 1, vectorLength: TINY_LENGTH })
      expect(plan.uploadDeadline).toBeGreaterThan(Date.now())
      expect(plan.training.epochs).toBeGreaterThan(0)
    }

    // Each client trains from the plan's base version, fetched over HTTP.
    const fetched = await fetchWeights(url, TINY.name, plans[0]!.baseVersion)
    expect(Array.from(fetched.values)).toEqual(Array.from(base.values))

    const deltas = members.map((_, k) => knownDelta(k))
    members.forEach((client, k) => client.upload(roundId, deltas[k]!))
    for (const client of members) await client.next('upload-accepted', (m) => m.roundId === roundId)
    const results = await Promise.all(members.map((c) => c.next('round-result')))
    for (const result of results) expect(result).toEqual({ type: 'round-result', roundId, outcome: 'published', version: 2 })

    const published = await fetchWeights(url, TINY.name, 2)
    expect(published.version).toBe(2)
    const expected = expectedWeights(base.values, deltas)
    expect(Array.from(published.values)).toEqual(Array.from(expected))
    // Guard against a vacuous pass: the deltas did move the weights.
    expect(Array.from(published.values)).not.toEqual(Array.from(base.values))
    const latest = await fetchWeights(url, TINY.name, 'latest')
    expect(latest.version).toBe(2)
    expect(Array.from(latest.values)).toEqual(Array.from(expected))

    const info = await getJson<{ latestVersion: number }>(url, `/v1/models/${TINY.name}`)
    expect(info.body.latestVersion).toBe(2)

    const record = await getJson<RoundRecord>(url, `/admin/rounds/${roundId}`)
    expect(record.body).toMatchObject({
      id: roundId,
      model: TINY.name,
      baseVersion: 1,
      stage: 'done',
      outcome: 'published',
      publishedVersion: 2,
      eligible: 4,
      participants: 4,
      uploadsAccepted: 4,
      dropped: 0,
      rejections: {},
      reason: 'every participant uploaded or left',
    })
    expect(record.body.config).toMatchObject({ minCohort: 3, maxCohort: 4, strategy: 'plain-sum', optimizer: 'fedavg' })
    const counters = app.hearth.counters.snapshot()
    expect(counters).toMatchObject({ roundsStarted: 1, roundsPublished: 1, uploadsAccepted: 4, sessionsCheckedIn: 4 })
  })

  test('rounds follow one another: the next round starts from the published version', async () => {
    const running = await server.start({
      store: new MemoryStore(),
      rounds: { minCohort: 2, maxCohort: 2, selectionTimeoutMs: 10_000, uploadTimeoutMs: 5_000, pauseMs: 20 },
    })
    const members = await server.join(running.wsUrl, 2)
    for (let round = 1; round <= 3; round++) {
      const plans = await Promise.all(members.map((c) => c.next('round-plan')))
      expect(plans.map((p) => p.baseVersion)).toEqual([round, round])
      members.forEach((c, k) => c.upload(plans[0]!.roundId, knownDelta(k + round)))
      const results = await Promise.all(members.map((c) => c.next('round-result')))
      expect(results.map((r) => r.version)).toEqual([round + 1, round + 1])
    }
    expect((await fetchWeights(running.url, TINY.name, 'latest')).version).toBe(4)
  })

  test('selection waits for minCohort, then up to the selection deadline for more', async () => {
    const running = await server.start({
      store: new MemoryStore(),
      rounds: { minCohort: 2, maxCohort: 5, selectionTimeoutMs: 150, uploadTimeoutMs: 5_000, pauseMs: 60_000 },
    })
    const engine = running.app.hearth.rounds.engine(TINY.name)!
    const [first] = await server.join(running.wsUrl, 1)
    // One session is below minCohort: no round may open.
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(engine.current).toBeUndefined()
    const opened = Date.now()
    const [second] = await server.join(running.wsUrl, 1)
    expect(engine.current?.stage).toBe('selection')
    // Two wait, fewer than maxCohort: the round selects at the selection deadline, not before.
    const plans = await Promise.all([first!.next('round-plan'), second!.next('round-plan')])
    expect(Date.now() - opened).toBeGreaterThanOrEqual(140)
    expect(plans[0].roundId).toBe(plans[1].roundId)
    expect(engine.current?.toRecord()).toMatchObject({ stage: 'training', eligible: 2, participants: 2 })
  })

  test('sessions that gathered during the pause are sampled down to maxCohort', async () => {
    const running = await server.start({
      store: new MemoryStore(),
      rounds: { minCohort: 2, maxCohort: 3, selectionTimeoutMs: 10_000, uploadTimeoutMs: 5_000, pauseMs: 300 },
    })
    const engine = running.app.hearth.rounds.engine(TINY.name)!
    const early = await server.join(running.wsUrl, 2)
    // The third check-in fills maxCohort, so the first round selects all three at once.
    const late = await server.join(running.wsUrl, 1)
    const plan = await early[0]!.next('round-plan')
    for (const client of [...early, ...late]) client.upload(plan.roundId, knownDelta(1))
    await early[0]!.next('round-result')
    // During the pause two more sessions check in: five wait when the next round opens.
    const more = await server.join(running.wsUrl, 2)
    const everyone = [...early, ...late, ...more]
    await eventually(() => engine.current?.stage === 'training', 5_000, 'the second round to select')
    const second = engine.current!.toRecord()
    expect(second).toMatchObject({ eligible: 5, participants: 3 })
    await new Promise((resolve) => setTimeout(resolve, 50))
    const planned = everyone.filter((c) => c.inbox.some((m) => m.type === 'round-plan' && m.roundId === second.id))
    expect(planned).toHaveLength(3)
  })

  test('a round whose participants do not all upload closes at the deadline and publishes what it has', async () => {
    const running = await server.start({
      store: new MemoryStore(),
      // Long enough for two prompt uploads on a loaded machine; the third never comes.
      rounds: { minCohort: 2, maxCohort: 3, selectionTimeoutMs: 10_000, uploadTimeoutMs: 600, pauseMs: 60_000 },
    })
    const members = await server.join(running.wsUrl, 3)
    const plans = await Promise.all(members.map((c) => c.next('round-plan')))
    const base = await fetchWeights(running.url, TINY.name, 1)
    const deltas = [knownDelta(7), knownDelta(8)]
    members[0]!.upload(plans[0]!.roundId, deltas[0]!)
    members[1]!.upload(plans[0]!.roundId, deltas[1]!)
    const results = await Promise.all(members.map((c) => c.next('round-result')))
    expect(results.every((r) => r.outcome === 'published' && r.version === 2)).toBe(true)
    const published = await fetchWeights(running.url, TINY.name, 2)
    expect(Array.from(published.values)).toEqual(Array.from(expectedWeights(base.values, deltas)))
    const record = running.app.hearth.rounds.round(plans[0]!.roundId)!.toRecord()
    expect(record).toMatchObject({ uploadsAccepted: 2, participants: 3, reason: 'uploads closed at the deadline' })
  })

  test('too few uploads by the deadline aborts the round with a reason and keeps the model', async () => {
    const running = await server.start({
      store: new MemoryStore(),
      rounds: { minCohort: 2, maxCohort: 2, selectionTimeoutMs: 10_000, uploadTimeoutMs: 500, pauseMs: 60_000 },
    })
    const members = await server.join(running.wsUrl, 2)
    const plan = await members[0]!.next('round-plan')
    members[0]!.upload(plan.roundId, knownDelta(1))
    await members[0]!.next('upload-accepted')
    const result = await members[0]!.next('round-result')
    expect(result).toMatchObject({ roundId: plan.roundId, outcome: 'aborted' })
    expect(result.reason).toMatch(/deadline passed with 1 accepted uploads; minCohort is 2/)
    expect(result.version).toBeUndefined()
    expect((await fetchWeights(running.url, TINY.name, 'latest')).version).toBe(1)
    expect(running.app.hearth.counters.snapshot().roundsAborted).toBe(1)
  })

  test('a participant that disconnects counts as dropped; the others finish the round', async () => {
    const running = await server.start({
      store: new MemoryStore(),
      rounds: { minCohort: 2, maxCohort: 3, selectionTimeoutMs: 10_000, uploadTimeoutMs: 5_000, pauseMs: 60_000 },
    })
    const members = await server.join(running.wsUrl, 3)
    const plans = await Promise.all(members.map((c) => c.next('round-plan')))
    members[2]!.close()
    await members[2]!.closed
    members[0]!.upload(plans[0]!.roundId, knownDelta(0))
    members[1]!.upload(plans[0]!.roundId, knownDelta(1))
    // Every remaining participant uploaded: the round closes without waiting for the deadline.
    const result = await members[0]!.next('round-result', undefined, 2_000)
    expect(result.outcome).toBe('published')
    const record = running.app.hearth.rounds.round(plans[0]!.roundId)!.toRecord()
    expect(record).toMatchObject({ participants: 3, uploadsAccepted: 2, dropped: 1 })
    expect(running.app.hearth.counters.snapshot().participantsDropped).toBe(1)
  })

  test('a session that leaves before selection leaves the pool', async () => {
    const running = await server.start({
      store: new MemoryStore(),
      rounds: { minCohort: 3, maxCohort: 3, selectionTimeoutMs: 10_000, uploadTimeoutMs: 5_000, pauseMs: 60_000 },
    })
    const [a, b] = await server.join(running.wsUrl, 2)
    const engine = running.app.hearth.rounds.engine(TINY.name)!
    expect(engine.waiting).toBe(2)
    a!.close()
    await a!.closed
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(engine.waiting).toBe(1)
    const [c, d] = await server.join(running.wsUrl, 2)
    for (const client of [b!, c!, d!]) await client.next('round-plan')
    expect(a!.inbox.some((m) => m.type === 'round-plan')).toBe(false)
  })

  test('check-in answers welcome with an opaque session id and the latest version', async () => {
    const running = await server.start({ store: new MemoryStore() })
    const client = server.track(await TestClient.connect(running.wsUrl))
    client.send({ type: 'checkin', protocol: PROTOCOL_VERSION, appKey: 'test-app-key', model: TINY.name, modelVersion: 1 })
    const welcome = await client.next('welcome')
    expect(welcome.model).toBe(TINY.name)
    expect(welcome.latestVersion).toBe(1)
    expect(welcome.sessionId).toMatch(/^[A-Za-z0-9_-]{22}$/)
  })
})
