import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, test, vi } from 'vitest'
import { run as audit } from '../../aggregator/cli/audit-command.ts'
import type { AuditExport } from '../../aggregator/cli/audit-command.ts'
import { run as models } from '../../aggregator/cli/models-command.ts'
import type { RollbackResult } from '../../aggregator/cli/models-command.ts'
import { fetchWeights, knownDelta, TINY, useApp } from './helpers.ts'

const TOKEN = 'models-cli-token-0123'
const env = { HEARTH_ADMIN_TOKEN: TOKEN }
const server = useApp()
afterEach(() => {
  vi.restoreAllMocks()
})

/** Runs a command, returning its exit code and what it printed. */
async function cli(run: (argv: string[], env: NodeJS.ProcessEnv) => Promise<number>, argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = []
  const err: string[] = []
  const log = vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => void out.push(args.join(' ')))
  const error = vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => void err.push(args.join(' ')))
  try {
    const code = await run(argv, env)
    return { code, out: out.join('\n'), err: err.join('\n') }
  } finally {
    log.mockRestore()
    error.mockRestore()
  }
}

describe('hearth models and hearth audit', () => {
  test('list, roll back after a round, then export the audit log over HTTP and from the data directory', async () => {
    const dataDir = server.tempDir()
    const running = await server.start({ dataDir, adminToken: TOKEN, rounds: { minCohort: 3, maxCohort: 3, selectionTimeoutMs: 50, uploadTimeoutMs: 10_000, pauseMs: 60_000 } })
    const url = running.url

    const initial = await cli(models, ['list', '--url', url])
    expect(initial.code).toBe(0)
    expect(initial.out.split('\n')[0]).toMatch(/^MODEL\s+ARCHITECTURE\s+LENGTH\s+LATEST\s+FROM\s+PUBLISHED \(UTC\)$/)
    expect(initial.out).toMatch(/^tiny\s+hearth-mf-v1\s+18\s+v1\s+initial\s/m)

    const clients = await server.join(running.wsUrl, 3)
    const plans = await Promise.all(clients.map((c) => c.next('round-plan')))
    for (const [k, client] of clients.entries()) client.upload(plans[0]!.roundId, knownDelta(k + 1))
    await Promise.all(clients.map((c) => c.next('round-result')))

    const rolled = await cli(models, ['rollback', '--model', TINY.name, '--to', '1', '--actor', 'bob', '--json', '--url', url])
    expect(rolled.code).toBe(0)
    const result = JSON.parse(rolled.out) as RollbackResult
    expect(result).toMatchObject({ model: TINY.name, fromVersion: 2, toVersion: 1, newVersion: 3 })
    expect(Array.from((await fetchWeights(url, TINY.name, 'latest')).values)).toEqual(Array.from((await fetchWeights(url, TINY.name, 1)).values))

    const listed = await cli(models, ['list', '--json', '--url', url])
    expect(JSON.parse(listed.out)).toMatchObject([{ name: TINY.name, latestVersion: 3, latestRoundId: null }])
    const human = await cli(models, ['rollback', '--model', TINY.name, '--to', '2', '--url', url])
    expect(human.out).toBe(`tiny: published v4 with the weights of v2 (was v3); audit entry ${result.auditId + 1}`)

    const output = join(dataDir, 'audit.json')
    expect((await cli(audit, ['export', '--url', url, '--output', output])).code).toBe(0)
    const overHttp = JSON.parse(readFileSync(output, 'utf8')) as AuditExport
    expect(overHttp.entries.map((e) => [e.action, e.actor])).toEqual([
      ['round.published', 'system'],
      ['model.rollback', 'admin:bob'],
      ['model.rollback', 'admin'],
    ])
    // The same log read from the SQLite file, while the aggregator runs.
    const offlineOutput = join(dataDir, 'audit-offline.json')
    expect((await cli(audit, ['export', '--data-dir', dataDir, '--output', offlineOutput])).code).toBe(0)
    expect((JSON.parse(readFileSync(offlineOutput, 'utf8')) as AuditExport).entries).toEqual(overHttp.entries)
  })

  test('errors carry the server’s code; bad usage exits 2', async () => {
    const running = await server.start({ adminToken: TOKEN, dataDir: server.tempDir() })
    await expect(models(['rollback', '--model', TINY.name, '--to', '7', '--url', running.url], env)).rejects.toMatchObject({ code: 'HEARTH_ERR_UNKNOWN_VERSION' })
    await expect(models(['list', '--url', running.url, '--token', 'not-the-token-at-all'], env)).rejects.toMatchObject({ code: 'HEARTH_ERR_UNAUTHORIZED' })
    for (const argv of [[], ['frobnicate'], ['rollback', '--to', '1'], ['rollback', '--model', 'm', '--to', 'x'], ['list', '--model', 'm'], ['list', '--url', 'ftp://x']]) {
      const { code, err } = await cli(models, argv)
      expect(code).toBe(2)
      expect(err).toMatch(/^hearth models: .+\n\nUsage: hearth models/)
    }
    for (const argv of [['export', '--url', 'http://x', '--data-dir', 'd'], ['export', '--bogus'], ['import']]) {
      expect((await cli(audit, argv)).code).toBe(2)
    }
  })

  test('audit export --help prints the usage and exits 0 before judging the other flags, like ledger export', async () => {
    for (const argv of [['export', '--help', '--token', 't'], ['export', '--url', 'ftp://x', '-h'], ['export', '--data-dir', 'd', '--url', 'http://x', '--help']]) {
      const { code, out, err } = await cli(audit, argv)
      expect(code).toBe(0)
      expect(out).toMatch(/^Usage: hearth audit export/)
      expect(err).toBe('')
    }
  })
})
