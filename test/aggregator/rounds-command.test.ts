import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, test, vi } from 'vitest'
import { describeRound, run } from '../../aggregator/cli/rounds-command.ts'
import { parseRoundDocument, roundDocumentHash } from '../../aggregator/config/round-document.ts'
import { MemoryStore } from '../../aggregator/store/memory-store.ts'
import type { AuditEntry, RoundRecord } from '../../aggregator/store/store.ts'
import { getJson, knownDelta, useApp } from './helpers.ts'

const TOKEN = 'rounds-cli-token-0123'
const server = useApp()
afterEach(() => {
  vi.restoreAllMocks()
})

/** Writes `document` as JSON to a fresh temporary file and returns its path. */
function documentFile(document: unknown): string {
  const file = join(server.tempDir(), 'round.json')
  writeFileSync(file, JSON.stringify(document))
  return file
}

/** Runs the command, returning its exit code and what it printed with console.log. */
async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = []
  const err: string[] = []
  const log = vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => void out.push(args.join(' ')))
  const error = vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => void err.push(args.join(' ')))
  try {
    const code = await run(argv, { HEARTH_ADMIN_TOKEN: TOKEN })
    return { code, out: out.join('\n'), err: err.join('\n') }
  } finally {
    log.mockRestore()
    error.mockRestore()
  }
}

describe('hearth rounds', () => {
  test('status --watch follows a live round until it publishes; list shows it', async () => {
    const running = await server.start({ store: new MemoryStore(), adminToken: TOKEN, rounds: { minCohort: 3, maxCohort: 3, selectionTimeoutMs: 50, uploadTimeoutMs: 10_000, pauseMs: 60_000 } })
    const clients = await server.join(running.wsUrl, 3)
    const plans = await Promise.all(clients.map((c) => c.next('round-plan')))
    const roundId = plans[0]!.roundId

    const watched = cli(['status', String(roundId), '--watch', '--json', '--interval', '20', '--url', running.url])
    // Uploads trickle in while the command watches.
    for (const [k, client] of clients.entries()) {
      await new Promise((resolve) => setTimeout(resolve, 60))
      client.upload(roundId, knownDelta(k + 1))
    }
    const { code, out } = await watched
    expect(code).toBe(0)
    const record = JSON.parse(out) as RoundRecord
    expect(record).toMatchObject({ id: roundId, outcome: 'published', publishedVersion: 2, uploadsAccepted: 3, participants: 3 })
    expect(describeRound(record)).toBe(`round ${roundId} tiny v1 done 3/3 uploads [##########] 0 dropped → published v2`)

    const listed = await cli(['list', '--url', running.url])
    expect(listed.code).toBe(0)
    expect(listed.out.split('\n')[0]).toMatch(/^ID\s+MODEL\s+STAGE\s+UPLOADS\s+DROPPED\s+OUTCOME\s+VERSION\s+CREATED \(UTC\)$/)
    expect(listed.out).toMatch(new RegExp(`^${roundId}\\s+tiny\\s+done\\s+3/3\\s+0\\s+published\\s+v2\\s`, 'm'))
    const json = await cli(['list', '--json', '--model', 'tiny', '--limit', '5', '--url', running.url])
    expect((JSON.parse(json.out) as RoundRecord[]).map((r) => r.id)).toEqual([roundId])
  })

  test('a wrong token fails with the server’s error code', async () => {
    const running = await server.start({ store: new MemoryStore(), adminToken: TOKEN })
    await expect(run(['list', '--url', running.url, '--token', 'not-the-token-at-all'])).rejects.toMatchObject({ code: 'HEARTH_ERR_UNAUTHORIZED' })
    await expect(run(['status', '999', '--url', running.url], { HEARTH_ADMIN_TOKEN: TOKEN })).rejects.toMatchObject({ code: 'HEARTH_ERR_UNKNOWN_ROUND' })
  })

  test('create, start --watch and stop run rounds by hand', async () => {
    const running = await server.start({ store: new MemoryStore(), adminToken: TOKEN, rounds: { minCohort: 3, maxCohort: 3, pauseMs: 0, schedule: 'manual' } })
    const clients = await server.join(running.wsUrl, 3)
    const document = { version: 1, model: 'tiny', cohort: { target: 3, minimum: 3 }, deadlines: { selectionMs: 5_000, trainingMs: 10_000 } }
    const file = documentFile(document)

    const created = await cli(['create', '--config', file, '--url', running.url, '--actor', 'carol'])
    expect(created.code).toBe(0)
    const id = Number(/^round (\d+) created for model tiny$/m.exec(created.out)?.[1])
    expect(id).toBeGreaterThan(0)
    expect(created.out).toContain(`document sha256 ${roundDocumentHash(parseRoundDocument(document))}`)

    const watched = cli(['start', String(id), '--watch', '--json', '--interval', '20', '--url', running.url])
    const plans = await Promise.all(clients.map((c) => c.next('round-plan')))
    expect(plans.map((p) => p.roundId)).toEqual([id, id, id])
    for (const [k, client] of clients.entries()) client.upload(id, knownDelta(k + 1))
    const { code, out } = await watched
    expect(code).toBe(0)
    expect(JSON.parse(out.split('\n').at(-1) as string)).toMatchObject({ id, outcome: 'published', publishedVersion: 2 })

    const second = await cli(['create', '--config', file, '--url', running.url])
    const secondId = Number(/^round (\d+) created/m.exec(second.out)?.[1])
    const stopped = await cli(['stop', String(secondId), '--reason', 'not today', '--url', running.url, '--actor', 'carol'])
    expect(stopped).toMatchObject({ code: 0, out: `round ${secondId} tiny v2 done 0/0 uploads 0 dropped → aborted: cancelled by admin:carol: not today` })
    await expect(run(['start', String(secondId), '--url', running.url], { HEARTH_ADMIN_TOKEN: TOKEN })).rejects.toMatchObject({ code: 'HEARTH_ERR_ROUND_STATE' })

    const { body } = await getJson<{ entries: AuditEntry[] }>(running.url, '/admin/audit', { authorization: `Bearer ${TOKEN}` })
    expect(body.entries.filter((e) => e.action.startsWith('round.') && e.actor !== 'system').map((e) => [e.action, e.subject, e.actor]).reverse()).toEqual([
      ['round.create', `round/${id}`, 'admin:carol'],
      ['round.start', `round/${id}`, 'admin'],
      ['round.create', `round/${secondId}`, 'admin'],
      ['round.stop', `round/${secondId}`, 'admin:carol'],
    ])
  })

  test('create with a refused document lists every problem and exits 1', async () => {
    const running = await server.start({ store: new MemoryStore(), adminToken: TOKEN, rounds: { schedule: 'manual' } })
    const file = documentFile({ version: 1, model: 'tiny', cohort: { target: 2, minimum: 5 }, optimizer: { kind: 'fedadam' } })
    const { code, out, err } = await cli(['create', '--config', file, '--url', running.url])
    expect(code).toBe(1)
    expect(out).toBe('')
    expect(err.split('\n')).toEqual([`hearth rounds create: the aggregator refused ${file}:`, '  /cohort/minimum: 5 exceeds the target 2'])
    const conflict = await cli(['create', '--config', documentFile({ version: 1, model: 'tiny', optimizer: { kind: 'fedadam' } }), '--url', running.url])
    expect(conflict.code).toBe(1)
    expect(conflict.err).toContain('  /optimizer/kind: "fedadam" in the document, "fedavg" in this aggregator (fixed for the process)')
  })

  test.each([
    [[]],
    [['frobnicate']],
    [['status']],
    [['status', 'x']],
    [['list', '3']],
    [['list', '--url', 'ftp://x']],
    [['list', '--bogus']],
    [['create']],
    [['create', '--config', '/nonexistent/round.json']],
    [['start']],
    [['stop', '1', '--watch']],
    [['list', '--reason', 'x']],
    [['start', '1', '--config', 'x.json']],
  ])('bad usage %j exits 2', async (argv) => {
    const { code, err } = await cli(argv)
    expect(code).toBe(2)
    expect(err).toMatch(/^hearth rounds: .+\n\nUsage: hearth rounds/)
  })
})
