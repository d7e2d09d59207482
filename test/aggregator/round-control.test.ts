/**
 * Rounds created, started and stopped through the admin API (plugins/admin-rounds.ts), over real
 * sockets: Node test devices take part in the rounds an operator runs.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { parseStartArgs } from '../../aggregator/cli/aggregator-command.ts'
import { UsageError } from '../../aggregator/cli/command.ts'
import { canonicalSha256, parseRoundDocument, roundDocumentHash } from '../../aggregator/config/round-document.ts'
import { resolveOptions } from '../../aggregator/options.ts'
import type { AggregatorOptions } from '../../aggregator/options.ts'
import { MemoryStore } from '../../aggregator/store/memory-store.ts'
import type { AuditEntry, RoundRecord } from '../../aggregator/store/store.ts'
import { AdaptiveOptimizer } from '../../aggregator/rounds/adaptive-optimizer.ts'
import { SHUTDOWN_REASON } from '../../aggregator/rounds/engine.ts'
import { eventually, getJson, knownDelta, tempDir, TestClient, useApp } from './helpers.ts'
import type { RunningApp } from './helpers.ts'

const TOKEN = 'round-control-token-0123'
const AUTH = { authorization: `Bearer ${TOKEN}` }
/** Process options every test starts from: three devices a round, no pause. */
const ROUNDS = { minCohort: 3, maxCohort: 3, selectionTimeoutMs: 50, uploadTimeoutMs: 10_000, pauseMs: 0 } as const
/** A document within what those options fix: cohort, deadlines and training of its own. */
const DOCUMENT = {
  version: 1,
  model: 'tiny',
  description: 'three devices, two local epochs',
  cohort: { target: 3, minimum: 3 },
  deadlines: { selectionMs: 5_000, trainingMs: 10_000 },
  training: { epochs: 2, learningRate: 0.5 },
}

const server = useApp()
/** The aggregator the helpers below talk to: the one the test started last. */
let running: RunningApp

async function start(rounds: AggregatorOptions['rounds'], store = new MemoryStore()): Promise<RunningApp> {
  running = await server.start({ store, adminToken: TOKEN, rounds })
  return running
}

/** POSTs `body` as JSON, or nothing when it is undefined. */
async function post<T>(path: string, body: unknown, headers: Record<string, string> = AUTH): Promise<{ status: number; body: T }> {
  const response = await fetch(
    running.url + path,
    body === undefined ? { method: 'POST', headers } : { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(body) },
  )
  return { status: response.status, body: (await response.json()) as T }
}

async function devices(n: number): Promise<TestClient[]> {
  return Promise.all(Array.from({ length: n }, async () => server.track(await TestClient.checkedIn(running.wsUrl))))
}

async function audit(): Promise<AuditEntry[]> {
  const { body } = await getJson<{ entries: AuditEntry[] }>(running.url, '/admin/audit', AUTH)
  return body.entries.reverse()
}

interface Created {
  round: RoundRecord
  documentHash: string
  configHash: string
}

describe('rounds run by hand', () => {
  test('manual schedule: nothing runs until a created round is started; devices complete it and it publishes', async () => {
    await start({ ...ROUNDS, schedule: 'manual' })
    const group = await devices(3)
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(group.flatMap((c) => c.inbox)).toEqual([]) // three devices wait, but no round opened by itself

    const created = await post<Created>('/admin/rounds', DOCUMENT, { ...AUTH, 'x-hearth-actor': 'alice' })
    expect(created.status).toBe(201)
    const { round, documentHash, configHash } = created.body
    expect(round).toMatchObject({ model: 'tiny', stage: 'created', outcome: null, config: { minCohort: 3, maxCohort: 3, selectionTimeoutMs: 5_000, training: { epochs: 2, learningRate: 0.5 } } })
    expect(documentHash).toBe(roundDocumentHash(parseRoundDocument(DOCUMENT)))
    expect(round.config.documentHash).toBe(documentHash)
    expect(configHash).toBe(canonicalSha256(round.config))

    const started = await post<{ roundId: number; begins: string; ahead: number }>(`/admin/rounds/${round.id}/start`, {}, { ...AUTH, 'x-hearth-actor': 'alice' })
    expect(started).toEqual({ status: 200, body: { roundId: round.id, model: 'tiny', begins: 'now', ahead: 0 } })
    const plans = await Promise.all(group.map((c) => c.next('round-plan')))
    expect(plans.map((p) => p.roundId)).toEqual([round.id, round.id, round.id])
    expect(plans[0]?.training).toMatchObject({ epochs: 2, learningRate: 0.5 })
    for (const [k, client] of group.entries()) client.upload(round.id, knownDelta(k + 1))
    const results = await Promise.all(group.map((c) => c.next('round-result')))
    expect(results.every((r) => r.outcome === 'published')).toBe(true)

    const { body: record } = await getJson<RoundRecord>(running.url, `/admin/rounds/${round.id}`, AUTH)
    expect(record).toMatchObject({ stage: 'done', outcome: 'published', publishedVersion: 2, uploadsAccepted: 3 })
    // The engine opens nothing more by itself.
    await post(`/admin/rounds/${round.id}/start`, {}).then((r) => expect(r.status).toBe(409))

    await eventually(async () => (await audit()).some((e) => e.action === 'round.published'), 5_000, 'the outcome entry')
    const entries = (await audit()).filter((e) => e.subject === `round/${round.id}`)
    expect(entries.map((e) => [e.action, e.actor])).toEqual([
      ['round.create', 'admin:alice'],
      ['round.start', 'admin:alice'],
      ['round.published', 'system'],
    ])
    for (const entry of entries) expect(entry.details.configHash).toBe(configHash)
    expect(entries[0]?.details).toMatchObject({ documentHash, document: parseRoundDocument(DOCUMENT) })
    expect(entries[1]?.details).toMatchObject({ begins: 'now' })
  })

  test('stop mid-round: devices are told it aborted, nothing is published or charged, and the audit log names who', async () => {
    const store = new MemoryStore()
    const privacy = { mode: 'central', clipNorm: 1, noiseMultiplier: 1.1, budget: { epsilon: 8, delta: 1e-6 } } as const
    await start({ ...ROUNDS, schedule: 'manual', privacy }, store)
    const group = await devices(3)
    const { body: created } = await post<Created>('/admin/rounds', { ...DOCUMENT, privacy })
    await post(`/admin/rounds/${created.round.id}/start`, {})
    await Promise.all(group.map((c) => c.next('round-plan')))

    const stopped = await post<RoundRecord>(`/admin/rounds/${created.round.id}/stop`, { reason: 'wrong cohort' }, { ...AUTH, 'x-hearth-actor': 'bob' })
    expect(stopped.status).toBe(200)
    const reason = 'stopped by admin:bob: wrong cohort'
    expect(stopped.body).toMatchObject({ id: created.round.id, stage: 'done', outcome: 'aborted', reason, publishedVersion: null })
    for (const result of await Promise.all(group.map((c) => c.next('round-result')))) {
      expect(result).toEqual({ type: 'round-result', roundId: created.round.id, outcome: 'aborted', reason })
    }
    expect((await getJson<{ latestVersion: number }>(running.url, '/v1/models/tiny')).body.latestVersion).toBe(1)
    expect(await store.listLedger('tiny')).toEqual([])
    expect((await store.getRound(created.round.id))?.reason).toBe(reason)
    // Too late to stop it again, or to start it.
    const again = await post<{ code: string }>(`/admin/rounds/${created.round.id}/stop`, {})
    expect(again).toMatchObject({ status: 409, body: { code: 'HEARTH_ERR_ROUND_STATE' } })

    await eventually(async () => (await audit()).some((e) => e.action === 'round.aborted'), 5_000, 'the outcome entry')
    // The outcome is recorded as the round ends, the operator's action once the stop returns.
    const entries = new Map((await audit()).filter((e) => e.subject === `round/${created.round.id}`).map((e) => [e.action, e]))
    expect([...entries.keys()].sort()).toEqual(['round.aborted', 'round.create', 'round.start', 'round.stop'])
    for (const entry of entries.values()) expect(entry.details.configHash).toBe(created.configHash)
    expect(entries.get('round.stop')).toMatchObject({ actor: 'admin:bob', details: { reason, selected: 3 } })
    expect(entries.get('round.aborted')).toMatchObject({ actor: 'system', details: { outcome: 'aborted', reason, dp: { charged: false } } })
  })

  test('a created round that is stopped is cancelled, and cannot start', async () => {
    await start({ ...ROUNDS, schedule: 'manual' })
    const { body: created } = await post<Created>('/admin/rounds', DOCUMENT)
    const stopped = await post<RoundRecord>(`/admin/rounds/${created.round.id}/stop`, undefined)
    expect(stopped.body).toMatchObject({ outcome: 'aborted', reason: 'cancelled by admin', selectedAt: null })
    const late = await post<{ code: string; message: string }>(`/admin/rounds/${created.round.id}/start`, {})
    expect(late).toMatchObject({ status: 409, body: { code: 'HEARTH_ERR_ROUND_STATE' } })
    expect(late.body.message).toContain('cancelled by admin')
  })

  test('auto schedule: a started round goes before the automatic ones, without waiting for the pause', async () => {
    await start({ ...ROUNDS, pauseMs: 60_000 })
    const group = await devices(3)
    const first = await Promise.all(group.map((c) => c.next('round-plan')))
    const automatic = first[0]!.roundId
    const { body: created } = await post<Created>('/admin/rounds', { ...DOCUMENT, training: { epochs: 3 } })
    const started = await post<{ begins: string; ahead: number }>(`/admin/rounds/${created.round.id}/start`, {})
    expect(started.body).toMatchObject({ begins: 'after-current-round', ahead: 1 })

    for (const [k, client] of group.entries()) client.upload(automatic, knownDelta(k + 1))
    await Promise.all(group.map((c) => c.next('round-result', (r) => r.roundId === automatic)))
    // The pause is a minute long; the operator's round opens at once.
    const next = await Promise.all(group.map((c) => c.next('round-plan', undefined, 3_000)))
    expect(next.map((p) => p.roundId)).toEqual([created.round.id, created.round.id, created.round.id])
    expect(next[0]?.training.epochs).toBe(3)
    for (const [k, client] of group.entries()) client.upload(created.round.id, knownDelta(k + 1))
    const results = await Promise.all(group.map((c) => c.next('round-result', (r) => r.roundId === created.round.id)))
    expect(results.map((r) => r.outcome)).toEqual(['published', 'published', 'published'])
  })

  test('an invalid document is refused with every problem listed', async () => {
    await start({ ...ROUNDS, schedule: 'manual' })
    const refused = await post<{ code: string; statusCode: number; message: string; problems: string[] }>('/admin/rounds', {
      version: 1,
      model: 'tiny',
      cohort: { target: 2, minimum: 5, extra: 1 },
      deadlines: { selectionMs: -1 },
      optimizer: { kind: 'sgd' },
    })
    expect(refused.status).toBe(400)
    expect(refused.body).toMatchObject({ code: 'HEARTH_ERR_INVALID_CONFIG', statusCode: 400 })
    expect(refused.body.problems).toEqual(
      expect.arrayContaining([expect.stringMatching(/^\/cohort: unknown field extra/), expect.stringMatching(/^\/deadlines\/selectionMs/), expect.stringMatching(/^\/optimizer\/kind/)]),
    )
    expect(refused.body.problems.length).toBeGreaterThanOrEqual(3)
    for (const problem of refused.body.problems) expect(refused.body.message).toContain(problem)
    const unknown = await post<{ code: string }>('/admin/rounds', { version: 1, model: 'nope' })
    expect(unknown).toMatchObject({ status: 404, body: { code: 'HEARTH_ERR_UNKNOWN_MODEL' } })
    expect((await getJson<{ rounds: unknown[] }>(running.url, '/admin/rounds', AUTH)).body.rounds).toEqual([])
  })

  test("a document must state the process's whole server optimizer, its rate decay and per-tensor rates included", async () => {
    await start({ ...ROUNDS, schedule: 'manual', optimizer: new AdaptiveOptimizer('fedadam', { learningRate: 0.05, tensorLearningRates: { tower_kernel: 0.1 } }) })
    const refused = await post<{ code: string; problems: string[] }>('/admin/rounds', {
      ...DOCUMENT,
      optimizer: { kind: 'fedadam', learningRate: 0.05, learningRateDecay: 0.5 },
    })
    expect(refused.status).toBe(400)
    expect(refused.body.problems).toEqual([
      '/optimizer/learningRateDecay: 0.5 in the document, 1 in this aggregator (fixed for the process)',
      '/optimizer/tensorLearningRates/tower_kernel: unset in the document, 0.1 in this aggregator (fixed for the process)',
    ])
    const accepted = await post<Created>('/admin/rounds', { ...DOCUMENT, optimizer: { kind: 'fedadam', learningRate: 0.05, tensorLearningRates: { tower_kernel: 0.1 } } })
    expect(accepted.status).toBe(201)
  })

  test('a document that states fixed fields differently is refused, each conflict listed', async () => {
    const privacy = { mode: 'central', clipNorm: 1, noiseMultiplier: 1.1, budget: { epsilon: 8, delta: 1e-6 } } as const
    await start({ ...ROUNDS, schedule: 'manual', privacy })
    const refused = await post<{ code: string; problems: string[] }>('/admin/rounds', {
      ...DOCUMENT,
      privacy: { ...privacy, noiseMultiplier: 0.5, budget: { epsilon: 20, delta: 1e-6 }, expectedCohortSize: 3 },
      optimizer: { kind: 'fedadam' },
      sampling: { kind: 'poisson', rate: 0.5 },
      deadlines: { ...DOCUMENT.deadlines, pauseMs: 10 },
    })
    expect(refused.status).toBe(400)
    expect(refused.body.problems).toEqual([
      '/sampling/kind: "poisson" in the document, "uniform" in this aggregator (fixed for the process)',
      '/privacy/noiseMultiplier: 0.5 in the document, 1.1 in this aggregator (fixed for the process)',
      '/privacy/budget/epsilon: 20 in the document, 8 in this aggregator (fixed for the process)',
      '/optimizer/kind: "fedadam" in the document, "fedavg" in this aggregator (fixed for the process)',
      '/deadlines/pauseMs: 10 in the document, 0 in this aggregator (fixed for the process)',
    ])
    // Omitting the DP settings is a conflict too: a document says what its rounds run with.
    const silent = await post<{ problems: string[] }>('/admin/rounds', DOCUMENT)
    expect(silent.body.problems).toEqual(['/privacy/mode: "none" in the document, "central" in this aggregator (fixed for the process)'])
    // Per-round fields may differ: a larger cohort with the process's denominator m stated.
    const larger = await post<Created>('/admin/rounds', { ...DOCUMENT, cohort: { target: 5, minimum: 4 }, privacy: { ...privacy, expectedCohortSize: 3 } })
    expect(larger.status).toBe(201)
    expect(larger.body.round.config).toMatchObject({ minCohort: 4, maxCohort: 5, strategy: 'central-dp(plain-sum)' })
  })

  test('on SQLite: a created round is on record, and cancelled when the aggregator stops before it opens', async () => {
    const dataDir = server.tempDir()
    running = await server.start({ dataDir, adminToken: TOKEN, rounds: { ...ROUNDS, schedule: 'manual' } })
    const { body: created } = await post<Created>('/admin/rounds', DOCUMENT)
    expect((await getJson<RoundRecord>(running.url, `/admin/rounds/${created.round.id}`, AUTH)).body).toMatchObject({ stage: 'created', config: created.round.config })
    await running.close()
    running = await server.start({ dataDir, adminToken: TOKEN, rounds: { ...ROUNDS, schedule: 'manual' } })
    const { body: record } = await getJson<RoundRecord>(running.url, `/admin/rounds/${created.round.id}`, AUTH)
    expect(record).toMatchObject({ stage: 'done', outcome: 'aborted', reason: SHUTDOWN_REASON, config: { documentHash: created.documentHash } })
    expect(await post(`/admin/rounds/${created.round.id}/start`, {})).toMatchObject({ status: 409, body: { code: 'HEARTH_ERR_ROUND_STATE' } })
  })

  test('the admin token guards every round action; unknown ids are 404', async () => {
    await start({ ...ROUNDS, schedule: 'manual' })
    for (const path of ['/admin/rounds', '/admin/rounds/1/start', '/admin/rounds/1/stop']) {
      const response = await post<{ code: string }>(path, DOCUMENT, {})
      expect(response, path).toMatchObject({ status: 401, body: { code: 'HEARTH_ERR_UNAUTHORIZED' } })
    }
    expect((await getJson<{ rounds: unknown[] }>(running.url, '/admin/rounds', AUTH)).body.rounds).toEqual([])
    expect(await post('/admin/rounds/99/start', {})).toMatchObject({ status: 404, body: { code: 'HEARTH_ERR_UNKNOWN_ROUND' } })
    expect(await post('/admin/rounds/99/stop', {})).toMatchObject({ status: 404, body: { code: 'HEARTH_ERR_UNKNOWN_ROUND' } })
  })
})

describe('hearth aggregator start --schedule', () => {
  test('sets rounds.schedule, with or without a configuration document; auto by default', () => {
    const start = (argv: string[]) => parseStartArgs(argv, {})
    const rounds = (argv: string[]) => {
      const command = start(argv)
      return command.help ? undefined : command.options.rounds
    }
    expect(rounds([])?.schedule).toBeUndefined()
    expect(resolveOptions({ rounds: rounds([]) }).rounds.schedule).toBe('auto')
    expect(rounds(['--schedule', 'manual'])?.schedule).toBe('manual')
    const dir = tempDir()
    try {
      const file = join(dir.path, 'rounds.json')
      writeFileSync(file, JSON.stringify({ version: 1, model: 'default', cohort: { target: 4, minimum: 2 } }))
      expect(rounds(['--config', file, '--schedule', 'manual'])).toMatchObject({ schedule: 'manual', minCohort: 2, maxCohort: 4 })
    } finally {
      dir.remove()
    }
    expect(() => start(['--schedule', 'sometimes'])).toThrow(UsageError)
  })
})
