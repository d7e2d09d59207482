/**
 * The adaptive server optimizer's moments are stored with each version: an aggregator running
 * FedAdam that restarts between two rounds publishes bit for bit what an uninterrupted one
 * publishes from the same deltas, and not what a FedAdam whose moments were reset would. A
 * rollback version carries no moments, so the round after it starts them afresh.
 */
import { cpSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, expect, test } from 'vitest'
import { AdaptiveOptimizer } from '../../aggregator/rounds/adaptive-optimizer.ts'
import { SqliteStore, DATABASE_FILE } from '../../aggregator/store/sqlite-store.ts'
import { federatedLayout, mfSpec } from '../../protocol/model-spec.ts'
import { eventually, fetchWeights, knownDelta, listen, TestClient, TINY, TINY_LENGTH, tempDir } from './helpers.ts'
import type { RunningApp } from './helpers.ts'

const ADMIN_TOKEN = 'optimizer-restart-admin-token'
const FEDADAM = new AdaptiveOptimizer('fedadam', { learningRate: 0.05 })
const ROUNDS = { minCohort: 3, maxCohort: 3, selectionTimeoutMs: 20, uploadTimeoutMs: 10_000, pauseMs: 1_000, optimizer: FEDADAM }

const cleanups: (() => void | Promise<void>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function start(dataDir: string): Promise<RunningApp> {
  const running = await listen({ dataDir, adminToken: ADMIN_TOKEN, rounds: ROUNDS })
  cleanups.push(() => running.close())
  return running
}

/** Runs one round in which three fresh clients upload `deltas`; resolves with the published version. */
async function round(running: RunningApp, deltas: readonly Float32Array[]): Promise<number> {
  const clients = await Promise.all(deltas.map(() => TestClient.checkedIn(running.wsUrl)))
  const plans = await Promise.all(clients.map((client) => client.next('round-plan')))
  clients.forEach((client, k) => client.upload(plans[k]!.roundId, deltas[k]!))
  const results = await Promise.all(clients.map((client) => client.next('round-result', () => true, 10_000)))
  for (const client of clients) client.close()
  // Gone before the pause ends, so no round opens with them after this one.
  await eventually(() => running.app.hearth.counters.snapshot().connectedClients === 0, 5_000, 'the clients to leave')
  expect(results[0]).toMatchObject({ outcome: 'published' })
  return (results[0] as { version: number }).version
}

const deltas = (first: number): Float32Array[] => [first, first + 1, first + 2].map((k) => knownDelta(k))
const sumOf = (uploads: readonly Float32Array[]): Float64Array =>
  Float64Array.from({ length: TINY_LENGTH }, (_, i) => uploads.reduce((sum, delta) => sum + (delta[i] as number), 0))
const bits = (weights: Float32Array): string => Buffer.from(weights.buffer, weights.byteOffset, weights.byteLength).toString('hex')

test('FedAdam across a restart publishes what an uninterrupted run does, not what reset moments would', { timeout: 60_000 }, async () => {
  const interrupted = tempDir()
  const uninterrupted = tempDir()
  cleanups.push(interrupted.remove, uninterrupted.remove)
  // Both runs start from the same random initial weights: version 1 is created once, then copied.
  const first = await start(interrupted.path)
  const v1 = await fetchWeights(first.url, TINY.name, 1)
  await first.close()
  cpSync(interrupted.path, uninterrupted.path, { recursive: true })
  const a = deltas(1)
  const b = deltas(4)

  // Known answer: one FedAdam stepping twice, and one whose moments start afresh at the second step.
  const straight = FEDADAM.resume(null)
  const w2 = straight.step(v1.values, { sum: sumOf(a), count: 3 })
  const w3 = straight.step(w2, { sum: sumOf(b), count: 3 })
  const reset = FEDADAM.resume(null).step(w2, { sum: sumOf(b), count: 3 })
  expect(bits(w3)).not.toBe(bits(reset))

  const before = await start(interrupted.path)
  expect(await round(before, a)).toBe(2)
  expect(bits((await fetchWeights(before.url, TINY.name, 2)).values)).toBe(bits(w2))
  await before.close()
  const after = await start(interrupted.path)
  expect(await round(after, b)).toBe(3)
  const restarted = (await fetchWeights(after.url, TINY.name, 3)).values

  const steady = await start(uninterrupted.path)
  expect(await round(steady, a)).toBe(2)
  expect(await round(steady, b)).toBe(3)
  const straightThrough = (await fetchWeights(steady.url, TINY.name, 3)).values

  expect(bits(restarted)).toBe(bits(w3))
  expect(bits(straightThrough)).toBe(bits(w3))
  expect(bits(restarted)).not.toBe(bits(reset))

  // Rolling back to version 2 publishes version 4 without moments: round 5 starts them afresh.
  const rollback = await fetch(`${after.url}/admin/models/${TINY.name}/rollback`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ toVersion: 2 }),
  })
  expect(rollback.status).toBe(200)
  const c = deltas(7)
  expect(await round(after, c)).toBe(5)
  const fresh = FEDADAM.resume(null).step(w2, { sum: sumOf(c), count: 3 })
  expect(bits((await fetchWeights(after.url, TINY.name, 5)).values)).toBe(bits(fresh))
  await after.close()

  // On disk: the moments of each version FedAdam published, none for version 1 or the rollback.
  const store = SqliteStore.open(join(interrupted.path, DATABASE_FILE))
  cleanups.push(() => store.close())
  expect(await store.getOptimizerState(TINY.name, 1)).toBeUndefined()
  expect(await store.getOptimizerState(TINY.name, 3)).toMatchObject({ optimizer: 'fedadam', rounds: 2 })
  expect(await store.getOptimizerState(TINY.name, 4)).toBeUndefined()
  expect(await store.getOptimizerState(TINY.name, 5)).toMatchObject({ optimizer: 'fedadam', rounds: 1 })
})

test("per-tensor server rates: a round publishes the optimizer's step on the model's layout; a tensor the model lacks stops startup", { timeout: 60_000 }, async () => {
  const dir = tempDir()
  cleanups.push(dir.remove)
  const unknown = new AdaptiveOptimizer('fedadam', { tensorLearningRates: { no_such_tensor: 0.1 } })
  await expect(listen({ dataDir: dir.path, adminToken: ADMIN_TOKEN, rounds: { ...ROUNDS, optimizer: unknown } })).rejects.toMatchObject({
    code: 'HEARTH_ERR_INVALID_CONFIG',
    message: expect.stringContaining('no_such_tensor'),
  })
  const scaled = new AdaptiveOptimizer('fedadam', { learningRate: 0.05, tensorLearningRates: { tower_kernel: 0.1 } })
  const running = await listen({ dataDir: dir.path, adminToken: ADMIN_TOKEN, rounds: { ...ROUNDS, optimizer: scaled } })
  cleanups.push(() => running.close())
  const v1 = await fetchWeights(running.url, TINY.name, 1)
  const uploads = deltas(1)
  const layout = federatedLayout(mfSpec(TINY.name, TINY.mf))
  const expected = scaled.resume(null).step(v1.values, { sum: sumOf(uploads), count: 3 }, layout)
  expect(bits(expected)).not.toBe(bits(FEDADAM.resume(null).step(v1.values, { sum: sumOf(uploads), count: 3 })))
  expect(await round(running, uploads)).toBe(2)
  expect(bits((await fetchWeights(running.url, TINY.name, 2)).values)).toBe(bits(expected))
})
