import { describe, expect, test, vi } from 'vitest'
import { WebSocket } from 'ws'
import type { LiveSnapshot } from '../../aggregator/plugins/admin-live.ts'
import { UNAUTHORIZED_CLOSE } from '../../aggregator/plugins/admin-live.ts'
import { MemoryStore } from '../../aggregator/store/memory-store.ts'
import { getJson, TINY, TINY_LENGTH, useApp } from './helpers.ts'

const TOKEN = 'live-test-token-0123456'
const server = useApp()

interface Live {
  readonly socket: WebSocket
  /** The close code, listened for from the start: a refusal may close the socket right after it opens. */
  readonly closed: Promise<number>
  /** Snapshots received, in order. */
  readonly inbox: LiveSnapshot[]
}

async function open(url: string, headers: Record<string, string> = {}): Promise<Live> {
  const socket = new WebSocket(url.replace(/^http/, 'ws') + '/admin/live', { headers })
  const inbox: LiveSnapshot[] = []
  socket.on('message', (data) => inbox.push(JSON.parse(String(data)) as LiveSnapshot))
  const closed = new Promise<number>((resolve) => socket.once('close', (code) => resolve(code)))
  await new Promise((resolve, reject) => {
    socket.once('open', resolve)
    socket.once('error', reject)
  })
  return { socket, closed, inbox }
}

async function message(live: Live, index: number): Promise<LiveSnapshot> {
  await vi.waitFor(() => expect(live.inbox.length).toBeGreaterThan(index), { timeout: 5_000 })
  return live.inbox[index] as LiveSnapshot
}

describe('/admin/live and /admin/models', () => {
  test('sends snapshots only after a valid auth message', async () => {
    const running = await server.start({ store: new MemoryStore(), adminToken: TOKEN })
    const wrong = await open(running.url)
    wrong.socket.send(JSON.stringify({ type: 'auth', token: 'not-the-token-at-all' }))
    expect(await wrong.closed).toBe(UNAUTHORIZED_CLOSE)
    const garbage = await open(running.url)
    garbage.socket.send('not json')
    expect(await garbage.closed).toBe(UNAUTHORIZED_CLOSE)
    expect([...wrong.inbox, ...garbage.inbox]).toEqual([])

    const live = await open(running.url)
    live.socket.send(JSON.stringify({ type: 'auth', token: TOKEN }))
    const snapshot = await message(live, 0)
    expect(snapshot).toMatchObject({ type: 'snapshot', rounds: [], models: [{ name: TINY.name, latestVersion: 1 }] })
    expect(snapshot.counters.roundsStarted).toBe(0)
    expect(snapshot.at).toBeGreaterThan(0)
    // A change is pushed without asking.
    running.app.hearth.counters.reject('HEARTH_ERR_MALFORMED_FRAME')
    expect((await message(live, 1)).counters.rejections).toEqual({ HEARTH_ERR_MALFORMED_FRAME: 1 })
    live.socket.close()
  })

  test('refuses a browser page from a foreign origin', async () => {
    const running = await server.start({ store: new MemoryStore(), corsOrigins: ['https://app.example'] })
    const foreign = await open(running.url, { origin: 'https://evil.example' })
    expect(await foreign.closed).toBe(1008)
    const own = await open(running.url, { origin: running.url })
    expect((await message(own, 0)).type).toBe('snapshot')
    own.socket.close()
  })

  test('GET /admin/models lists the served models with their latest version', async () => {
    const running = await server.start({ store: new MemoryStore(), adminToken: TOKEN })
    expect((await getJson(running.url, '/admin/models')).status).toBe(401)
    const { status, body } = await getJson<{ models: unknown[] }>(running.url, '/admin/models', { authorization: `Bearer ${TOKEN}` })
    expect(status).toBe(200)
    expect(body.models).toEqual([
      { name: TINY.name, architecture: 'hearth-mf-v1', vectorLength: TINY_LENGTH, latestVersion: 1, latestVersionAt: expect.any(Number), latestRoundId: null },
    ])
  })
})
