import { afterEach, describe, expect, test, vi } from 'vitest'
import { describeRound, run } from '../../aggregator/cli/rounds-command.ts'
import { MemoryStore } from '../../aggregator/store/memory-store.ts'
import type { RoundRecord } from '../../aggregator/store/store.ts'
import { knownDelta, listen, TestClient } from './helpers.ts'
import type { RunningApp } from './helpers.ts'

const TOKEN = 'rounds-cli-token-0123'
let running: RunningApp | undefined
const clients: TestClient[] = []

afterEach(async () => {
  vi.restoreAllMocks()
  for (const client of clients.splice(0)) client.close()
  await running?.close()
  running = undefined
})

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
    running = await listen({ store: new MemoryStore(), adminToken: TOKEN, rounds: { minCohort: 3, maxCohort: 3, selectionTimeoutMs: 50, uploadTimeoutMs: 10_000, pauseMs: 60_000 } })
    for (let i = 0; i < 3; i++) clients.push(await TestClient.checkedIn(running.wsUrl))
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
    running = await listen({ store: new MemoryStore(), adminToken: TOKEN })
    await expect(run(['list', '--url', running.url, '--token', 'not-the-token-at-all'])).rejects.toMatchObject({ code: 'HEARTH_ERR_UNAUTHORIZED' })
    await expect(run(['status', '999', '--url', running.url], { HEARTH_ADMIN_TOKEN: TOKEN })).rejects.toMatchObject({ code: 'HEARTH_ERR_UNKNOWN_ROUND' })
  })

  test.each([[[]], [['frobnicate']], [['status']], [['status', 'x']], [['list', '3']], [['list', '--url', 'ftp://x']], [['list', '--bogus']]])('bad usage %j exits 2', async (argv) => {
    const { code, err } = await cli(argv)
    expect(code).toBe(2)
    expect(err).toMatch(/^hearth rounds: .+\n\nUsage: hearth rounds/)
  })
})
