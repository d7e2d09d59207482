/**
 * A device whose connection drops while it trains for a round (aggregator-side close, no
 * `offline` event) reconnects by itself, reports the round skipped, and never sends that round's
 * update on the new connection; it takes part in the next round normally.
 */
import { afterEach, describe, expect, test } from 'vitest'
import { WebSocket } from 'ws'
import { MemoryStore } from '../../aggregator/store/memory-store.ts'
import type { RoundRecord } from '../../aggregator/store/store.ts'
import { createHearth } from '../../client/hearth.ts'
import type { Hearth } from '../../client/hearth.ts'
import type { RoundEventDetail } from '../../client/events.ts'
import { simulatedUser } from '../../demo/catalog.ts'
import { decodeFrame } from '../../protocol/frames.ts'
import type { HearthWorkerApi } from '../../worker/api.ts'
import { createWorkerCore } from '../../worker/core.ts'
import { transferringApi } from '../../worker/expose.ts'
import { MemoryDeviceStore } from '../../worker/store/memory-store.ts'
import { APP_KEY, eventually, getJson, knownDelta, listen, TestClient, TINY } from '../aggregator/helpers.ts'
import type { RunningApp } from '../aggregator/helpers.ts'

let running: RunningApp | undefined
let hearth: Hearth | undefined
const clients: TestClient[] = []
afterEach(async () => {
  for (const client of clients.splice(0)) client.close()
  await hearth?.close()
  hearth = undefined
  await running?.close()
  running = undefined
})

describe('a connection lost mid-round', () => {
  test('skips the round, sends nothing late, and joins the next round', async () => {
    running = await listen({ store: new MemoryStore(), rounds: { minCohort: 2, maxCohort: 2, selectionTimeoutMs: 20, uploadTimeoutMs: 3_000, pauseMs: 100 } })
    const { url } = running
    // Training waits until the test releases it, so the connection can be cut in the middle.
    let release: () => void = () => {}
    let trainings = 0
    const core = createWorkerCore({ openStore: async () => new MemoryDeviceStore(), seed: 7 })
    const worker: HearthWorkerApi = {
      ...transferringApi(core),
      trainRound: async (request) => {
        trainings++
        if (trainings === 1) await new Promise<void>((resolve) => (release = resolve))
        return core.trainRound(request)
      },
    }
    /** Every binary frame the device sent, with the connection (1, 2, …) it went on. */
    const frames: { connection: number; roundId: number }[] = []
    const sockets: WebSocket[] = []
    hearth = await createHearth(
      { aggregatorUrl: url, appKey: APP_KEY, model: TINY.name, backends: ['cpu'], dbName: 'connection-lost', training: false },
      {
        worker,
        createSocket: (socketUrl) => {
          const socket = new WebSocket(socketUrl)
          const connection = sockets.push(socket)
          const send = socket.send.bind(socket)
          socket.send = ((data: string | Uint8Array) => {
            if (typeof data !== 'string') frames.push({ connection, roundId: decodeFrame(new Uint8Array(data)).id })
            send(data)
          }) as WebSocket['send']
          return socket
        },
        fetch: (input, init) => fetch(input, init),
      },
    )
    const events: RoundEventDetail[] = []
    hearth.addEventListener('round', (event) => events.push(event.detail))
    const user = simulatedUser(7)
    for (let i = 0; i < 40; i++) hearth.record(user.next())
    await hearth.flush()

    const other = await TestClient.checkedIn(running.wsUrl)
    clients.push(other)
    const plan = await other.next('round-plan')
    await eventually(() => trainings === 1, 5_000, 'the device to start training')

    // The aggregator side drops the device's connection (as a proxy or a restart would).
    for (const client of running.app.websocketServer.clients) {
      if (client.readyState === client.OPEN && sockets.length === 1) {
        /* the first server-side socket is the device's: it connected before the test client */
        client.terminate()
        break
      }
    }
    await eventually(() => sockets.length === 2 && sockets[1]!.readyState === WebSocket.OPEN, 10_000, 'the device to reconnect')
    release() // training of the lost round finishes now, on the new connection's watch
    await eventually(() => events.some((e) => e.roundId === plan.roundId && e.status === 'skipped'), 5_000, 'the round to be reported skipped')
    expect(events.find((e) => e.roundId === plan.roundId && e.status === 'skipped')).toMatchObject({ reason: 'the connection to the aggregator was lost during the round' })

    // With one of two participants gone the round cannot reach its minimum and ends; whatever
    // the device trained for it never went out, and the aggregator refused nothing from it.
    await other.next('round-result', (m) => m.roundId === plan.roundId, 10_000)
    await new Promise((resolve) => setTimeout(resolve, 300)) // room for a late frame, if any were sent
    const record = (await getJson<RoundRecord>(url, `/admin/rounds/${plan.roundId}`)).body
    expect(record.uploadsAccepted).toBe(0)
    expect(record.rejections).toEqual({})
    expect(frames.filter((f) => f.roundId === plan.roundId)).toEqual([])
    expect(running.app.hearth.counters.snapshot().rejections).toEqual({})

    // The next round: both take part and it publishes.
    const next = await other.next('round-plan', (m) => m.roundId > plan.roundId, 15_000)
    other.upload(next.roundId, knownDelta(2))
    const published = await other.next('round-result', (m) => m.roundId === next.roundId, 15_000)
    expect(published).toMatchObject({ outcome: 'published' })
    expect(frames.filter((f) => f.roundId === next.roundId)).toEqual([{ connection: 2, roundId: next.roundId }])
  }, 60_000)
})
