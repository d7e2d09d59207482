/**
 * A burst of uploads costs a few writes of the round record, not one each: every write is a
 * commit (fsync'd on SQLite), and one per upload blocked the event loop for seconds at a cohort
 * of 1,000 (bench/RESULTS.md, "Load"). The final record is still complete.
 */
import { expect, test, vi } from 'vitest'
import { MemoryStore } from '../../aggregator/store/memory-store.ts'
import { knownDelta, useApp } from './helpers.ts'

const server = useApp()

test('40 uploads in a burst write the round record a few times, and the published record in full', async () => {
  const store = new MemoryStore()
  const updates = vi.spyOn(store, 'updateRound')
  const n = 40
  const running = await server.start({ store, rounds: { minCohort: n, maxCohort: n, selectionTimeoutMs: 10_000, uploadTimeoutMs: 10_000, pauseMs: 60_000 } })
  const clients = await server.join(running.wsUrl, n)
  const plans = await Promise.all(clients.map((c) => c.next('round-plan')))
  const roundId = plans[0]!.roundId
  updates.mockClear()
  const started = performance.now()
  clients.forEach((c, k) => c.upload(roundId, knownDelta(k)))
  for (const c of clients) expect(await c.next('round-result', undefined, 10_000)).toMatchObject({ outcome: 'published' })
  const seconds = (performance.now() - started) / 1000

  // At most one progress write per 250 ms of the burst (and the first), however many uploads.
  expect(updates.mock.calls.length).toBeLessThanOrEqual(1 + Math.ceil(seconds / 0.25))
  expect(updates.mock.calls.length).toBeLessThan(n)
  expect(await store.getRound(roundId)).toMatchObject({ outcome: 'published', uploadsAccepted: n, participants: n })
})
