/**
 * The round engine without sockets: fake transports, a memory store, mocked timers and an
 * injected clock, so deadlines are exact rather than "tens of milliseconds" (STYLE.md #6).
 */
import type { FastifyBaseLogger } from 'fastify'
import { afterEach, beforeEach, describe, expect, test, vi } from 'vitest'
import { AggregatorCounters } from '../../aggregator/counters.ts'
import { ModelRegistry } from '../../aggregator/models/registry.ts'
import { resolveOptions } from '../../aggregator/options.ts'
import type { RoundOptions } from '../../aggregator/options.ts'
import { SHUTDOWN_REASON } from '../../aggregator/rounds/engine.ts'
import { RoundService } from '../../aggregator/rounds/service.ts'
import type { ClientSession } from '../../aggregator/rounds/session.ts'
import { MemoryStore } from '../../aggregator/store/memory-store.ts'
import type { RoundRecord } from '../../aggregator/store/store.ts'
import { encodeFrame, FrameKind } from '../../protocol/frames.ts'
import { PROTOCOL_VERSION } from '../../protocol/messages.ts'
import type { ServerMessage } from '../../protocol/messages.ts'
import { APP_KEY, knownDelta, TINY, TINY_LENGTH } from './helpers.ts'

const noop = (): void => {}
const silent: FastifyBaseLogger = {
  level: 'silent',
  fatal: noop,
  error: noop,
  warn: noop,
  info: noop,
  debug: noop,
  trace: noop,
  silent: noop,
  child: () => silent,
}

interface Harness {
  service: RoundService
  store: MemoryStore
  clock: { now: number }
  connect(): { session: ClientSession; inbox: ServerMessage[] }
}

async function harness(rounds: RoundOptions, store = new MemoryStore()): Promise<Harness> {
  const options = resolveOptions({ models: [TINY], appKeys: [APP_KEY], rounds })
  const clock = { now: 1_000_000 }
  const registry = await ModelRegistry.open({ store, models: options.models, uniform: () => 0.5, now: () => clock.now, log: silent })
  const service = await RoundService.create({
    registry,
    store,
    counters: new AggregatorCounters(),
    rounds: options.rounds,
    appKeys: options.appKeys,
    log: silent,
    now: () => clock.now,
  })
  const connect = () => {
    const inbox: ServerMessage[] = []
    const session = service.connect({ send: (m) => inbox.push(m), close: noop })
    service.receive(session, new TextEncoder().encode(JSON.stringify({ type: 'checkin', protocol: PROTOCOL_VERSION, appKey: APP_KEY, model: TINY.name })), false)
    return { session, inbox }
  }
  return { service, store, clock, connect }
}

function upload(service: RoundService, session: ClientSession, roundId: number, values: Float32Array): void {
  service.receive(session, encodeFrame({ kind: FrameKind.Update, id: roundId, values }), true)
}

const of = <T extends ServerMessage['type']>(inbox: ServerMessage[], type: T) =>
  inbox.filter((m): m is Extract<ServerMessage, { type: T }> => m.type === type)

/** Advances both the mocked timers and the injected clock. */
async function advance(h: Harness, ms: number): Promise<void> {
  h.clock.now += ms
  await vi.advanceTimersByTimeAsync(ms)
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] })
})
afterEach(() => {
  vi.useRealTimers()
})

describe('round engine with mocked time', () => {
  test('uploads are taken up to the deadline and refused as late one millisecond after', async () => {
    const h = await harness({ minCohort: 2, maxCohort: 2, selectionTimeoutMs: 5_000, uploadTimeoutMs: 1_000, pauseMs: 10_000 })
    const a = h.connect()
    const b = h.connect()
    await vi.advanceTimersByTimeAsync(0)
    const plan = of(a.inbox, 'round-plan')[0]!
    expect(plan.uploadDeadline).toBe(h.clock.now + 1_000)

    h.clock.now = plan.uploadDeadline // exactly at the deadline: still on time
    upload(h.service, a.session, plan.roundId, knownDelta(0))
    expect(of(a.inbox, 'upload-accepted')).toHaveLength(1)

    h.clock.now = plan.uploadDeadline + 1 // the timer has not fired yet, but the deadline passed
    upload(h.service, b.session, plan.roundId, knownDelta(1))
    expect(of(b.inbox, 'error')).toEqual([expect.objectContaining({ code: 'HEARTH_ERR_LATE_UPLOAD', roundId: plan.roundId })])

    await vi.advanceTimersByTimeAsync(1_000)
    expect(of(a.inbox, 'round-result')[0]).toMatchObject({ outcome: 'aborted' })
    expect(h.service.round(plan.roundId)?.toRecord()).toMatchObject({ uploadsAccepted: 1, rejections: { HEARTH_ERR_LATE_UPLOAD: 1 } })
    await h.service.close()
  })

  test('the selection deadline bounds the wait; the pause holds the next round back', async () => {
    const h = await harness({ minCohort: 2, maxCohort: 10, selectionTimeoutMs: 3_000, uploadTimeoutMs: 1_000, pauseMs: 7_000 })
    const engine = h.service.engine(TINY.name)!
    const clients = [h.connect(), h.connect()]
    await vi.advanceTimersByTimeAsync(0)
    expect(engine.current?.stage).toBe('selection')
    await advance(h, 2_999)
    expect(of(clients[0]!.inbox, 'round-plan')).toHaveLength(0)
    await advance(h, 1)
    const plan = of(clients[0]!.inbox, 'round-plan')[0]!
    expect(plan).toBeDefined()
    clients.forEach((c, k) => upload(h.service, c.session, plan.roundId, knownDelta(k)))
    await vi.advanceTimersByTimeAsync(0)
    expect(of(clients[0]!.inbox, 'round-result')[0]).toMatchObject({ outcome: 'published', version: 2 })

    // Both sessions wait again, but the next round opens only after the pause.
    await advance(h, 6_999)
    expect(engine.current).toBeUndefined()
    await advance(h, 1)
    expect(engine.current?.stage).toBe('selection')
    expect(engine.current?.baseVersion).toBe(2)
    await h.service.close()
  })

  test('no participant hears of a round before its cohort is on record (write-ahead)', async () => {
    let release!: () => void
    const gate = new Promise<void>((resolve) => {
      release = resolve
    })
    class SlowStore extends MemoryStore {
      override async updateRound(round: RoundRecord): Promise<void> {
        if (round.stage === 'training') await gate
        return super.updateRound(round)
      }
    }
    const store = new SlowStore()
    const h = await harness({ minCohort: 2, maxCohort: 2, selectionTimeoutMs: 5_000, uploadTimeoutMs: 60_000, pauseMs: 1_000 }, store)
    const a = h.connect()
    h.connect()
    await vi.advanceTimersByTimeAsync(10)
    expect(of(a.inbox, 'round-plan')).toHaveLength(0)
    release()
    await vi.advanceTimersByTimeAsync(0)
    const plan = of(a.inbox, 'round-plan')[0]!
    expect((await store.getRound(plan.roundId))?.participants).toBe(2)
    await h.service.close()
  })

  test('closing during selection aborts the round and refuses new sessions', async () => {
    const h = await harness({ minCohort: 2, maxCohort: 10, selectionTimeoutMs: 3_000, uploadTimeoutMs: 1_000, pauseMs: 1_000 })
    h.connect()
    h.connect()
    await vi.advanceTimersByTimeAsync(0)
    const round = h.service.engine(TINY.name)!.current!
    expect(round.stage).toBe('selection')
    await h.service.close()
    expect(await h.store.getRound(round.id)).toMatchObject({ outcome: 'aborted', reason: SHUTDOWN_REASON, stage: 'done' })
    // A closed service takes no more sessions.
    const late = h.service.connect({ send: noop, close: noop })
    expect(late.open).toBe(false)
  })

  test('every vector element is averaged: a wrong-length upload cannot shift the others', async () => {
    const h = await harness({ minCohort: 2, maxCohort: 2, selectionTimeoutMs: 5_000, uploadTimeoutMs: 60_000, pauseMs: 1_000 })
    const a = h.connect()
    const b = h.connect()
    await vi.advanceTimersByTimeAsync(0)
    const plan = of(a.inbox, 'round-plan')[0]!
    upload(h.service, a.session, plan.roundId, new Float32Array(TINY_LENGTH + 1).fill(100))
    upload(h.service, a.session, plan.roundId, knownDelta(0))
    upload(h.service, b.session, plan.roundId, knownDelta(1))
    await vi.advanceTimersByTimeAsync(0)
    const v2 = (await h.store.getVersion(TINY.name, 2))!.weights
    const v1 = (await h.store.getVersion(TINY.name, 1))!.weights
    const [d0, d1] = [knownDelta(0), knownDelta(1)]
    expect(Array.from(v2)).toEqual(Array.from(v1, (x, i) => Math.fround(x + ((d0[i] as number) + (d1[i] as number)) / 2)))
    await h.service.close()
  })
})
