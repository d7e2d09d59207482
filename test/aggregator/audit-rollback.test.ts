/**
 * The audit log and model rollback over HTTP against a real aggregator: a round's outcome is
 * recorded (configuration hash, counts, published version; no client identity), a rollback
 * publishes a new version with the old weights and records who asked, and every refusal carries
 * its catalogue code.
 */
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { RESTART_REASON } from '../../aggregator/app.ts'
import { canonicalSha256 } from '../../aggregator/config/round-document.ts'
import { SHUTDOWN_REASON } from '../../aggregator/rounds/engine.ts'
import { MemoryStore } from '../../aggregator/store/memory-store.ts'
import { DATABASE_FILE, SqliteStore } from '../../aggregator/store/sqlite-store.ts'
import type { AuditEntry, ModelVersionSummary, RoundRecord } from '../../aggregator/store/store.ts'
import { eventually, fetchWeights, getJson, knownDelta, TINY, useApp } from './helpers.ts'
import type { RunningApp } from './helpers.ts'

const TOKEN = 'audit-rollback-token-0123'
const auth = { authorization: `Bearer ${TOKEN}` }
const ROUNDS = { minCohort: 3, maxCohort: 3, selectionTimeoutMs: 50, uploadTimeoutMs: 10_000, pauseMs: 60_000 }

const server = useApp()
/** The aggregator the helpers below talk to: the one the test started last. */
let running: RunningApp

async function post(path: string, body: unknown, headers: Record<string, string> = auth): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(running.url + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })
  return { status: response.status, body: (await response.json()) as Record<string, unknown> }
}

async function audit(query = ''): Promise<{ entries: AuditEntry[]; next?: number }> {
  const { status, body } = await getJson<{ entries: AuditEntry[]; next?: number }>(running.url, `/admin/audit${query}`, auth)
  expect(status).toBe(200)
  return body
}

/** Three clients take part in one round, which publishes version 2; returns its record. */
async function publishOneRound(): Promise<RoundRecord> {
  const clients = await server.join(running.wsUrl, 3)
  const plans = await Promise.all(clients.map((c) => c.next('round-plan')))
  const roundId = plans[0]!.roundId
  for (const [k, client] of clients.entries()) client.upload(roundId, knownDelta(k + 1))
  await Promise.all(clients.map((c) => c.next('round-result')))
  return (await getJson<RoundRecord>(running.url, `/admin/rounds/${roundId}`, auth)).body
}

describe('audit log and rollback', () => {
  test('a round outcome is recorded; a rollback publishes the old weights as a new version, recorded with its actor', async () => {
    running = await server.start({ store: new MemoryStore(), adminToken: TOKEN, rounds: ROUNDS })
    const v1 = await fetchWeights(running.url, TINY.name, 1)
    const round = await publishOneRound()
    expect(round.publishedVersion).toBe(2)

    await eventually(async () => (await audit()).entries.length === 1, 5_000, 'the round outcome in the audit log')
    const [outcome] = (await audit()).entries
    expect(outcome).toMatchObject({ actor: 'system', action: 'round.published', subject: `round/${round.id}` })
    // Exactly these fields: counts, a hash and versions, nothing that names a participant.
    expect(outcome!.details).toEqual({
      roundId: round.id,
      model: TINY.name,
      baseVersion: 1,
      configHash: canonicalSha256(round.config),
      participants: 3,
      uploads: 3,
      dropped: 0,
      outcome: 'published',
      reason: round.reason,
      dp: null,
      publishedVersion: 2,
    })

    // Refusals, each with its code; none writes anything.
    expect((await post(`/admin/models/${TINY.name}/rollback`, { toVersion: 1 }, {})).status).toBe(401)
    expect((await post('/admin/models/nope/rollback', { toVersion: 1 })).body.code).toBe('HEARTH_ERR_UNKNOWN_MODEL')
    expect((await post(`/admin/models/${TINY.name}/rollback`, { toVersion: 9 })).body.code).toBe('HEARTH_ERR_UNKNOWN_VERSION')
    expect((await post(`/admin/models/${TINY.name}/rollback`, { toVersion: 2 })).body.code).toBe('HEARTH_ERR_INVALID_ARGUMENT')
    expect((await post(`/admin/models/${TINY.name}/rollback`, { toVersion: 'one' })).status).toBe(400)
    expect((await post(`/admin/models/${TINY.name}/rollback`, { toVersion: 1 }, { ...auth, 'x-hearth-actor': 'x'.repeat(65) })).status).toBe(400)
    expect((await audit()).entries).toHaveLength(1)

    const rolled = await post(`/admin/models/${TINY.name}/rollback`, { toVersion: 1 }, { ...auth, 'x-hearth-actor': 'alice <ops>\n' })
    expect(rolled.status).toBe(200)
    expect(rolled.body).toMatchObject({ model: TINY.name, fromVersion: 2, toVersion: 1, newVersion: 3 })
    // Served at once, as the latest, with version 1's weights.
    const latest = await fetchWeights(running.url, TINY.name, 'latest')
    expect(latest.version).toBe(3)
    expect(Array.from(latest.values)).toEqual(Array.from(v1.values))
    expect(Array.from((await fetchWeights(running.url, TINY.name, 3)).values)).toEqual(Array.from(v1.values))

    const { entries } = await audit()
    expect(entries[0]).toEqual({
      id: rolled.body.auditId,
      at: expect.any(Number) as number,
      actor: 'admin:alice ops',
      action: 'model.rollback',
      subject: `model/${TINY.name}`,
      details: { fromVersion: 2, toVersion: 1, newVersion: 3, sha256: rolled.body.sha256 },
    })

    const { body: listed } = await getJson<{ versions: ModelVersionSummary[] }>(running.url, `/admin/models/${TINY.name}/versions`, auth)
    expect(listed.versions.map((v) => [v.version, v.roundId])).toEqual([[3, null], [2, round.id], [1, null]])
    expect(listed.versions[0]!.sha256).toBe(listed.versions[2]!.sha256)
    expect((await getJson(running.url, `/admin/models/${TINY.name}/versions`)).status).toBe(401)

    // Keyset pages, newest first.
    const first = await audit('?limit=1')
    expect(first.entries.map((e) => e.action)).toEqual(['model.rollback'])
    expect((await audit(`?limit=1&before=${first.next}`)).entries.map((e) => e.action)).toEqual(['round.published'])
    expect((await getJson(running.url, '/admin/audit')).status).toBe(401)
  })

  test('a rollback is refused while a round of the model runs', async () => {
    running = await server.start({ store: new MemoryStore(), adminToken: TOKEN, rounds: ROUNDS })
    const clients = await server.join(running.wsUrl, 3)
    const [plan] = await Promise.all(clients.map((c) => c.next('round-plan')))
    const refused = await post(`/admin/models/${TINY.name}/rollback`, { toVersion: 1 })
    expect(refused.status).toBe(409)
    expect(refused.body.code).toBe('HEARTH_ERR_MODEL_BUSY')
    expect(refused.body.message).toContain(`round ${plan!.roundId}`)
    expect((await audit()).entries).toEqual([])
  })

  test('rounds ended by a shutdown, and rounds found in flight at startup, are recorded before the store closes', async () => {
    const dataDir = server.tempDir()
    const first = await server.start({ dataDir, adminToken: TOKEN, rounds: ROUNDS })
    const clients = await server.join(first.wsUrl, 3)
    const [plan] = await Promise.all(clients.map((c) => c.next('round-plan')))
    await first.close()

    // A round left without an outcome, as a process killed mid-round leaves it.
    const file = join(dataDir, DATABASE_FILE)
    const store = SqliteStore.open(file)
    const closed = (await store.getRound(plan!.roundId))!
    const orphan = await store.createRound({ ...closed, stage: 'training', outcome: null, reason: null, closedAt: null })
    await store.close()
    await (await server.start({ dataDir, adminToken: TOKEN, rounds: ROUNDS })).close()

    const reader = SqliteStore.openReadOnly(file)
    const entries = await reader.listAudit({ limit: 10 })
    await reader.close()
    expect(entries.map((e) => [e.action, e.subject, e.details.reason])).toEqual([
      ['round.aborted', `round/${orphan.id}`, RESTART_REASON],
      ['round.aborted', `round/${plan!.roundId}`, SHUTDOWN_REASON],
    ])
  })
})
