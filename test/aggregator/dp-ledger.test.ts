/**
 * Central DP end to end over real sockets: clients clip, the aggregator refuses what exceeds
 * the clip norm, every published round lands in the durable ledger with the ε an independent
 * RdpAccountant gives, the round that would overspend the budget never opens (and stays refused
 * after a restart), and the ledger exports over HTTP and through the spawned CLI.
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, test } from 'vitest'
import { parseExportArgs } from '../../aggregator/cli/ledger-command.ts'
import { UsageError } from '../../aggregator/cli/command.ts'
import { NORM_TOLERANCE } from '../../aggregator/privacy/central-noise.ts'
import type { LedgerExport } from '../../aggregator/privacy/ledger-export.ts'
import type { PrivacyOptions } from '../../aggregator/privacy/options.ts'
import { MemoryStore } from '../../aggregator/store/memory-store.ts'
import type { RoundRecord } from '../../aggregator/store/store.ts'
import { clipForUpload, ClipIndicator, l2Norm } from '../../protocol/clip.ts'
import { RdpAccountant } from '../../protocol/dp/accountant.ts'
import type { PrivacyEvent } from '../../protocol/dp/events.ts'
import { eventually, getJson, knownDelta, TINY, TINY_LENGTH, useApp } from './helpers.ts'

const TOKEN = 'ledger-test-admin-token'
const auth = { authorization: `Bearer ${TOKEN}` }
const hearth = fileURLToPath(new URL('../../bin/hearth.js', import.meta.url))

const server = useApp()

/** `node bin/hearth.js ...args`, asynchronously (the aggregator under test shares this event loop). */
function cli(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [hearth, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HEARTH_ADMIN_TOKEN: '' } })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`hearth ${args.join(' ')} timed out:\n${stdout}\n${stderr}`))
    }, 60_000)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })
}

/** Everything of an export but the moment it was made. */
const comparable = ({ exportedAt: _at, ...rest }: LedgerExport) => rest

describe('central DP: ledger, budget and export', () => {
  test('two rounds fit the budget, the third is refused before it opens; the ledger matches an independent accountant', async () => {
    const [clipNorm, z, delta] = [0.5, 3, 1e-6]
    // The effective noise multiplier, computed here from the documented rules: the noise grid
    // g = 2^(⌊log2 σ⌋ − 20) (gridGaussianNoise), the norm tolerance τ = 2^−20, d = 18 weights.
    expect(NORM_TOLERANCE).toBe(2 ** -20)
    const sigma = z * clipNorm
    const grid = 2 ** (Math.floor(Math.log2(sigma)) - 20)
    const zEff = sigma / (clipNorm * (1 + 2 ** -20) + grid * Math.sqrt(TINY_LENGTH))
    const event: PrivacyEvent = { kind: 'sampled-gaussian', samplingRate: 1, noiseMultiplier: zEff }
    const epsilonAfter = (rounds: number) => new RdpAccountant().compose(event, rounds).epsilon(delta)
    const budget = { epsilon: (epsilonAfter(2) + epsilonAfter(3)) / 2, delta }
    expect(epsilonAfter(2)).toBeLessThan(budget.epsilon)
    expect(epsilonAfter(3)).toBeGreaterThan(budget.epsilon)

    const dataDir = server.tempDir()
    const privacy: PrivacyOptions = { mode: 'central', clipNorm, noiseMultiplier: z, budget }
    const options = {
      dataDir,
      adminToken: TOKEN,
      rounds: { minCohort: 3, maxCohort: 3, selectionTimeoutMs: 10_000, uploadTimeoutMs: 5_000, pauseMs: 50, privacy },
    }
    const running = await server.start(options)
    const clients = await server.join(running.wsUrl, 3)

    // Client k's raw delta; two of the three exceed C.
    const raw = (k: number, round: number) => knownDelta(k + round).map((x) => x * [1, 10, 20][k]!)
    const roundIds: number[] = []
    for (let round = 0; round < 2; round++) {
      const plans = await Promise.all(clients.map((c) => c.next('round-plan')))
      const roundId = plans[0]!.roundId
      roundIds.push(roundId)
      for (const plan of plans) expect(plan.privacy).toEqual({ mode: 'central', clipNorm })
      if (round === 0) {
        // A client cannot exceed the sensitivity: an unclipped delta above C, or one without the
        // indicator, is refused; its proper upload is then accepted.
        const over = new Float32Array(TINY_LENGTH + 1)
        over.set(raw(2, 0))
        over[TINY_LENGTH] = ClipIndicator.Unclipped
        expect(l2Norm(over.subarray(0, TINY_LENGTH))).toBeGreaterThan(clipNorm)
        clients[2]!.upload(roundId, over)
        await clients[2]!.error('HEARTH_ERR_VECTOR_VALUE')
        clients[2]!.upload(roundId, raw(2, 0))
        await clients[2]!.error('HEARTH_ERR_VECTOR_LENGTH')
      }
      clients.forEach((c, k) => c.upload(roundId, clipForUpload(raw(k, round), clipNorm).values))
      for (const c of clients) await c.next('upload-accepted', (m) => m.roundId === roundId)
      const results = await Promise.all(clients.map((c) => c.next('round-result', (m) => m.roundId === roundId)))
      expect(results[0]).toMatchObject({ outcome: 'published', version: round + 2 })

      const record = (await getJson<RoundRecord>(running.url, `/admin/rounds/${roundId}`, auth)).body
      const clipped = [0, 1, 2].filter((k) => l2Norm(raw(k, round)) > clipNorm).length
      expect(clipped).toBe(2)
      expect(record.config.strategy).toBe('central-dp(plain-sum)')
      expect(record.privacy).toMatchObject({
        mode: 'central',
        sampling: 'uniform',
        samplingRate: 1,
        clipNorm,
        noiseMultiplier: z,
        effectiveNoiseMultiplier: zEff,
        denominator: 3,
        budget,
        event,
        clipping: { uploads: 3, clippedCount: clipped, clippedFraction: clipped / 3, noised: false, nextClipNorm: clipNorm },
      })
      expect(record.privacy?.trustAssumption).toMatch(/trusts the aggregator: it sees every clipped update and the exact, un-noised sum/)
      expect(record.privacy?.epsilonIfPublished).toBeCloseTo(epsilonAfter(round + 1), 10)
      if (round === 0) expect(record.rejections).toEqual({ HEARTH_ERR_VECTOR_VALUE: 1, HEARTH_ERR_VECTOR_LENGTH: 1 })
    }

    // The third round would exceed the budget: it never opens, though all three clients wait.
    const engine = running.app.hearth.rounds.engine(TINY.name)!
    await eventually(() => engine.refused !== undefined, 5_000, 'the refusal')
    expect(engine.refused?.code).toBe('HEARTH_ERR_PRIVACY_BUDGET_EXCEEDED')
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(engine.current).toBeUndefined()
    expect(clients.every((c) => c.inbox.every((m) => m.type !== 'round-plan'))).toBe(true)
    expect((await running.app.hearth.store.listRounds({ limit: 10 })).map((r) => r.id)).toEqual([...roundIds].reverse())

    // The ledger over HTTP: both entries, the cumulative ε of an independent accountant, the refusal.
    expect((await getJson(running.url, `/admin/models/${TINY.name}/ledger`)).status).toBe(401)
    expect((await getJson<{ code: string }>(running.url, '/admin/models/nope/ledger', auth)).body.code).toBe('HEARTH_ERR_UNKNOWN_MODEL')
    const { status, body: ledger } = await getJson<LedgerExport>(running.url, `/admin/models/${TINY.name}/ledger`, auth)
    expect(status).toBe(200)
    expect(ledger).toMatchObject({ model: TINY.name, mode: 'central', budget, rounds: 2, clipNorm, sampling: { kind: 'uniform', samplingRate: 1 } })
    expect(ledger.trustAssumption).toMatch(/trusts the aggregator/)
    expect(ledger.sampling?.assumption).toMatch(/no amplification by subsampling \(q = 1\)/)
    expect(ledger.epsilon!).toBeCloseTo(epsilonAfter(2), 10)
    expect(ledger.entries).toHaveLength(2)
    ledger.entries.forEach((entry, i) => {
      expect(entry).toMatchObject({ model: TINY.name, roundId: roundIds[i], version: i + 2, mode: 'central', samplingRate: 1, noiseMultiplier: z, clipNorm, event, count: 1, rounds: i + 1, budget })
      expect(entry.epsilon).toBeCloseTo(epsilonAfter(i + 1), 10)
    })
    expect(ledger.refusal?.code).toBe('HEARTH_ERR_PRIVACY_BUDGET_EXCEEDED')
    expect(ledger.refusal?.reason).toMatch(/would take epsilon from .* above the budget of/)

    // The CLI, spawned: from the running aggregator over HTTP.
    const viaUrl = await cli(['ledger', 'export', '--model', TINY.name, '--url', running.url, '--token', TOKEN])
    expect(viaUrl.code, viaUrl.stderr).toBe(0)
    expect(comparable(JSON.parse(viaUrl.stdout) as LedgerExport)).toEqual(comparable(ledger))
    const denied = await cli(['ledger', 'export', '--model', TINY.name, '--url', running.url])
    expect(denied.code).toBe(1)
    expect(denied.stderr).toMatch(/HEARTH_ERR_UNAUTHORIZED/)

    // With the aggregator stopped, from the data directory alone (read-only).
    for (const client of clients) client.close()
    await running.close()
    const viaDir = await cli(['ledger', 'export', '--model', TINY.name, '--data-dir', dataDir])
    expect(viaDir.code, viaDir.stderr).toBe(0)
    const offline = JSON.parse(viaDir.stdout) as LedgerExport
    expect(offline.entries).toEqual(ledger.entries)
    expect(offline).toMatchObject({ mode: 'central', budget, rounds: 2, clipNorm, refusal: ledger.refusal, epsilon: ledger.epsilon })
    const unknown = await cli(['ledger', 'export', '--model', 'nope', '--data-dir', dataDir])
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toMatch(/HEARTH_ERR_UNKNOWN_MODEL/)

    // A new process on the same data directory replays the ledger and still refuses.
    const again = await server.start(options)
    await server.join(again.wsUrl, 3)
    const restarted = again.app.hearth.rounds.engine(TINY.name)!
    await eventually(() => restarted.refused !== undefined, 5_000, 'the refusal after a restart')
    expect(restarted.current).toBeUndefined()
    expect(await again.app.hearth.store.listRounds({ limit: 10 })).toHaveLength(2)
  }, 120_000)

  test('Poisson sampling: the selection and the accountant use the same q', async () => {
    const q = 0.5
    const delta = 1e-6
    const running = await server.start({
      adminToken: TOKEN,
      store: new MemoryStore(),
      rounds: {
        minCohort: 1,
        maxCohort: 8,
        selectionTimeoutMs: 10_000,
        uploadTimeoutMs: 5_000,
        pauseMs: 60_000,
        sampling: { kind: 'poisson', rate: q },
        privacy: { mode: 'central', clipNorm: 1, noiseMultiplier: 1, expectedCohortSize: 4, budget: { epsilon: 100, delta } },
      },
    })
    const clients = await server.join(running.wsUrl, 8)
    const engine = running.app.hearth.rounds.engine(TINY.name)!
    // Selection closes with 8 waiting; each joins with probability 1/2 (a round with nobody aborts and
    // the next one waits for the pause, so keep to the first round that selects someone).
    await eventually(() => engine.current?.stage === 'training' || engine.current === undefined, 5_000, 'selection')
    const round = engine.current
    if (round === undefined) return // all 8 were left out (probability 1/256): nothing more to check here
    const record = round.toRecord()
    expect(record.eligible).toBe(8)
    expect(record.config.sampling).toEqual({ kind: 'poisson', rate: q })
    expect(record.privacy).toMatchObject({ sampling: 'poisson', samplingRate: q, denominator: 4 })
    expect(record.privacy?.event).toMatchObject({ kind: 'sampled-distributed-discrete-gaussian', samplingRate: q, noisyClients: 1, localSigma: 1 })
    // Plans go out once the cohort is on record; exactly the selected sessions get one.
    const planned = () => clients.filter((c) => c.inbox.some((m) => m.type === 'round-plan'))
    await eventually(() => planned().length === record.participants, 5_000, 'the round plans')
    const selected = planned()
    for (const c of selected) {
      const plan = await c.next('round-plan')
      c.upload(plan.roundId, clipForUpload(knownDelta(1), 1).values)
    }
    for (const c of selected) await c.next('round-result')
    const ledger = (await getJson<LedgerExport>(running.url, `/admin/models/${TINY.name}/ledger`, auth)).body
    expect(ledger.sampling?.samplingRate).toBe(q)
    expect(ledger.sampling?.assumption).toMatch(/independently with probability q = 0.5/)
    const entry = ledger.entries[0]!
    expect(entry.samplingRate).toBe(q)
    expect(entry.epsilon).toBe(new RdpAccountant().compose(entry.event, 1).epsilon(delta))
  }, 60_000)
})

describe('hearth ledger export: arguments', () => {
  test('reads --model and one source; refuses what it cannot use', () => {
    expect(parseExportArgs(['--model', 'm'], {})).toEqual({ model: 'm', source: { kind: 'data-dir', dataDir: '.hearth' }, output: undefined })
    expect(parseExportArgs(['--model', 'm', '--url', 'http://h:1/', '--output', 'x.json'], { HEARTH_ADMIN_TOKEN: 'from-env' })).toEqual({
      model: 'm',
      source: { kind: 'url', url: 'http://h:1', token: 'from-env' },
      output: 'x.json',
    })
    expect(parseExportArgs(['--help'], {})).toBe('help')
    for (const [argv, message] of [
      [[], /--model is required/],
      [['--model', 'm', '--url', 'http://h', '--data-dir', 'd'], /not both/],
      [['--model', 'm', '--token', 't'], /--token goes with --url/],
      [['--model', 'm', '--url', 'ftp://h'], /http\(s\) URL/],
      [['--model', 'm', '--bogus'], /bogus/],
    ] as const) {
      expect(() => parseExportArgs([...argv], {})).toThrow(UsageError)
      expect(() => parseExportArgs([...argv], {})).toThrow(message)
    }
  })
})
