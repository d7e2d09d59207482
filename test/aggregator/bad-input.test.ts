import { describe, expect, test } from 'vitest'
import { MemoryStore } from '../../aggregator/store/memory-store.ts'
import { CONTROL_MESSAGE_MAX_BYTES } from '../../aggregator/rounds/client-messages.ts'
import { encodeFrame, FRAME_HEADER_BYTES, FrameKind } from '../../protocol/frames.ts'
import { PROTOCOL_VERSION } from '../../protocol/messages.ts'
import { APP_KEY, eventually, fetchWeights, knownDelta, TestClient, TINY, TINY_LENGTH, useApp } from './helpers.ts'

const server = useApp()

describe('bad input over real sockets', () => {
  test('each bad message gets its catalogue code, is counted, and the round carries on', async () => {
    // A second, larger model raises maxPayload above the control-message bound, so an
    // oversized text message reaches the aggregator's own check instead of ws's.
    const big = { name: 'big', mf: { buckets: 1024, dim: 4 } }
    const bigLength = 1024 * 4 + 1024 + 4 * 4 + 4
    const running = await server.start({
      store: new MemoryStore(),
      models: [TINY, big],
      rounds: { minCohort: 3, maxCohort: 3, selectionTimeoutMs: 10_000, uploadTimeoutMs: 10_000, pauseMs: 60_000 },
    })
    const { url, wsUrl, app } = running
    const base = await fetchWeights(url, TINY.name, 1)
    const [a, b, c] = await server.join(wsUrl, 3)
    const plan = await a!.next('round-plan')
    const roundId = plan.roundId
    await b!.next('round-plan')
    await c!.next('round-plan')
    // Checks in after the cohort was drawn, so it is not selected.
    const [outsider] = await server.join(wsUrl, 1)

    const deltas = [knownDelta(1), knownDelta(2), knownDelta(3)]

    outsider!.upload(roundId, deltas[0]!)
    expect(await outsider!.error('HEARTH_ERR_NOT_SELECTED')).toMatchObject({ roundId })

    a!.sendBytes(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17]))
    expect((await a!.error('HEARTH_ERR_MALFORMED_FRAME')).roundId).toBeUndefined()

    a!.upload(roundId, new Float32Array(TINY_LENGTH - 1))
    expect(await a!.error('HEARTH_ERR_VECTOR_LENGTH')).toMatchObject({ roundId })

    a!.upload(roundId + 100, deltas[0]!)
    expect(await a!.error('HEARTH_ERR_UNKNOWN_ROUND')).toMatchObject({ roundId: roundId + 100 })

    const nonFinite = deltas[0]!.slice()
    nonFinite[3] = Number.NaN
    a!.upload(roundId, nonFinite)
    await a!.error('HEARTH_ERR_MALFORMED_FRAME')
    nonFinite[3] = Number.POSITIVE_INFINITY
    a!.upload(roundId, nonFinite)
    await a!.error('HEARTH_ERR_MALFORMED_FRAME')

    // A well-formed frame of a kind this round does not take.
    a!.sendBytes(encodeFrame({ kind: FrameKind.Weights, id: roundId, values: deltas[0]! }))
    expect(await a!.error('HEARTH_ERR_MALFORMED_FRAME')).toMatchObject({ roundId })

    a!.sendText('{"type": "checkin", ')
    await a!.error('HEARTH_ERR_MALFORMED_MESSAGE')
    a!.send({ type: 'upload', roundId })
    await a!.error('HEARTH_ERR_MALFORMED_MESSAGE')
    a!.send({ type: 'checkin', protocol: PROTOCOL_VERSION, appKey: APP_KEY, model: TINY.name })
    await a!.error('HEARTH_ERR_MALFORMED_MESSAGE')

    a!.sendText(JSON.stringify({ type: 'checkin', padding: 'x'.repeat(CONTROL_MESSAGE_MAX_BYTES) }))
    await a!.error('HEARTH_ERR_BODY_TOO_LARGE')

    // Above the socket's maxPayload: ws closes the connection with 1009 before buffering it.
    const maxPayload = app.hearth.maxMessageBytes
    expect(maxPayload).toBe(FRAME_HEADER_BYTES + 4 * bigLength)
    expect(maxPayload).toBeGreaterThan(CONTROL_MESSAGE_MAX_BYTES + 1024)
    outsider!.sendBytes(new Uint8Array(maxPayload + 1))
    expect((await outsider!.closed).code).toBe(1009)

    // Nothing above disturbed the round: the three good uploads are accepted and averaged.
    a!.upload(roundId, deltas[0]!)
    await a!.next('upload-accepted')
    a!.upload(roundId, deltas[1]!)
    expect(await a!.error('HEARTH_ERR_DUPLICATE_UPLOAD')).toMatchObject({ roundId })
    b!.upload(roundId, deltas[1]!)
    c!.upload(roundId, deltas[2]!)
    const result = await a!.next('round-result')
    expect(result).toMatchObject({ outcome: 'published', version: 2 })

    const published = await fetchWeights(url, TINY.name, 2)
    const expected = new Float32Array(TINY_LENGTH)
    for (let i = 0; i < TINY_LENGTH; i++) {
      expected[i] = (base.values[i] as number) + ((deltas[0]![i] as number) + (deltas[1]![i] as number) + (deltas[2]![i] as number)) / 3
    }
    expect(Array.from(published.values)).toEqual(Array.from(expected))

    const record = app.hearth.rounds.round(roundId)!.toRecord()
    expect(record.uploadsAccepted).toBe(3)
    // Rejections from participants and the outsider's NOT_SELECTED are charged to the round;
    // the outsider's oversized message only to the app counters (it was in no round).
    expect(record.rejections).toEqual({
      HEARTH_ERR_NOT_SELECTED: 1,
      HEARTH_ERR_MALFORMED_FRAME: 4,
      HEARTH_ERR_VECTOR_LENGTH: 1,
      HEARTH_ERR_UNKNOWN_ROUND: 1,
      HEARTH_ERR_MALFORMED_MESSAGE: 3,
      HEARTH_ERR_BODY_TOO_LARGE: 1,
      HEARTH_ERR_DUPLICATE_UPLOAD: 1,
    })
    await eventually(() => app.hearth.counters.snapshot().rejections.HEARTH_ERR_BODY_TOO_LARGE === 2, 2_000, 'the 1009 close to be counted')
    expect(app.hearth.counters.snapshot().rejections).toEqual({ ...record.rejections, HEARTH_ERR_BODY_TOO_LARGE: 2 })
    // And the stored record agrees with memory.
    await eventually(async () => (await app.hearth.store.getRound(roundId))?.rejections.HEARTH_ERR_DUPLICATE_UPLOAD === 1)
    expect((await app.hearth.store.getRound(roundId))?.rejections).toEqual(record.rejections)
  })

  test('an upload after the deadline is a late upload, counted against its round', async () => {
    const running = await server.start({
      store: new MemoryStore(),
      rounds: { minCohort: 2, maxCohort: 2, selectionTimeoutMs: 10_000, uploadTimeoutMs: 80, pauseMs: 60_000 },
    })
    const [, b] = await server.join(running.wsUrl, 2)
    const plan = await b!.next('round-plan')
    const result = await b!.next('round-result')
    expect(result.outcome).toBe('aborted')
    expect(Date.now()).toBeGreaterThan(plan.uploadDeadline)
    b!.upload(plan.roundId, knownDelta(2))
    expect(await b!.error('HEARTH_ERR_LATE_UPLOAD')).toMatchObject({ roundId: plan.roundId })
    const store = running.app.hearth.store
    await eventually(async () => (await store.getRound(plan.roundId))?.rejections.HEARTH_ERR_LATE_UPLOAD === 1, 2_000, 'the stored count')
  })

  test('an upload to a round that already ended, before its deadline, finds the round closed', async () => {
    const running = await server.start({
      store: new MemoryStore(),
      rounds: { minCohort: 2, maxCohort: 3, selectionTimeoutMs: 10_000, uploadTimeoutMs: 10_000, pauseMs: 60_000 },
    })
    const [a, b, c] = await server.join(running.wsUrl, 3)
    const plan = await a!.next('round-plan')
    // Two of three leave: the round can no longer reach minCohort and aborts at once.
    b!.close()
    c!.close()
    const result = await a!.next('round-result')
    expect(result.outcome).toBe('aborted')
    expect(result.reason).toMatch(/dropped out/)
    expect(Date.now()).toBeLessThan(plan.uploadDeadline)
    a!.upload(plan.roundId, knownDelta(1))
    expect(await a!.error('HEARTH_ERR_ROUND_CLOSED')).toMatchObject({ roundId: plan.roundId })
    expect(running.app.hearth.rounds.round(plan.roundId)!.toRecord()).toMatchObject({ dropped: 2, rejections: { HEARTH_ERR_ROUND_CLOSED: 1 } })
  })

  test('an update above maxUpdateNorm is refused with VECTOR_VALUE and leaves no trace', async () => {
    const running = await server.start({
      store: new MemoryStore(),
      rounds: { minCohort: 2, maxCohort: 2, selectionTimeoutMs: 10_000, uploadTimeoutMs: 10_000, pauseMs: 60_000, maxUpdateNorm: 1 },
    })
    const base = await fetchWeights(running.url, TINY.name, 1)
    const [a, b] = await server.join(running.wsUrl, 2)
    const plan = await a!.next('round-plan')
    const big = new Float32Array(TINY_LENGTH).fill(1) // norm sqrt(18) > 1
    a!.upload(plan.roundId, big)
    expect(await a!.error('HEARTH_ERR_VECTOR_VALUE')).toMatchObject({ roundId: plan.roundId })
    const small = new Float32Array(TINY_LENGTH).fill(0.125) // norm 0.53
    a!.upload(plan.roundId, small)
    b!.upload(plan.roundId, small)
    expect((await a!.next('round-result')).version).toBe(2)
    const published = await fetchWeights(running.url, TINY.name, 2)
    expect(Array.from(published.values)).toEqual(Array.from(base.values, (x) => Math.fround(x + 0.125)))
  })

  test('sessions that are invalid are refused with their code and closed (1008)', async () => {
    const running = await server.start({ store: new MemoryStore() })
    const { wsUrl, app } = running
    const cases = [
      [{ type: 'checkin', protocol: PROTOCOL_VERSION, appKey: 'wrong-key', model: TINY.name }, 'HEARTH_ERR_UNAUTHORIZED'],
      [{ type: 'checkin', protocol: PROTOCOL_VERSION + 1, appKey: APP_KEY, model: TINY.name }, 'HEARTH_ERR_UNSUPPORTED_PROTOCOL'],
      [{ type: 'checkin', protocol: PROTOCOL_VERSION, appKey: APP_KEY, model: 'no-such-model' }, 'HEARTH_ERR_UNKNOWN_MODEL'],
    ] as const
    for (const [checkin, code] of cases) {
      const client = server.track(await TestClient.connect(wsUrl))
      client.send(checkin)
      await client.error(code)
      expect(await client.closed).toEqual({ code: 1008, reason: code })
    }
    // A frame before check-in: the session has not proven its app key.
    const early = server.track(await TestClient.connect(wsUrl))
    early.upload(1, new Float32Array(TINY_LENGTH))
    await early.error('HEARTH_ERR_UNAUTHORIZED')
    expect((await early.closed).code).toBe(1008)
    expect(app.hearth.counters.snapshot().rejections).toEqual({
      HEARTH_ERR_UNAUTHORIZED: 2,
      HEARTH_ERR_UNSUPPORTED_PROTOCOL: 1,
      HEARTH_ERR_UNKNOWN_MODEL: 1,
    })
    expect(app.hearth.rounds.engine(TINY.name)?.waiting).toBe(0)
  })

  test('a malformed message before check-in is answered and the session may still check in', async () => {
    const running = await server.start({ store: new MemoryStore() })
    const client = server.track(await TestClient.connect(running.wsUrl))
    client.sendText('not json at all')
    await client.error('HEARTH_ERR_MALFORMED_MESSAGE')
    client.send({ type: 'checkin', protocol: PROTOCOL_VERSION, appKey: APP_KEY, model: 42 })
    expect((await client.error('HEARTH_ERR_MALFORMED_MESSAGE')).message).toMatch(/model/)
    client.send({ type: 'checkin', protocol: PROTOCOL_VERSION, appKey: APP_KEY, model: TINY.name })
    expect((await client.next('welcome')).model).toBe(TINY.name)
  })

  test('with an origin allow-list, a browser upgrade from another origin is refused', async () => {
    const running = await server.start({ store: new MemoryStore(), corsOrigins: ['https://shop.example'] })
    await expect(TestClient.connect(running.wsUrl, { origin: 'https://evil.example' })).rejects.toThrow(/401/)
    const allowed = server.track(await TestClient.connect(running.wsUrl, { origin: 'https://shop.example' }))
    allowed.send({ type: 'checkin', protocol: PROTOCOL_VERSION, appKey: APP_KEY, model: TINY.name })
    await allowed.next('welcome')
    // Clients outside a browser send no Origin and are not affected.
    await server.join(running.wsUrl, 1)
  })
})
