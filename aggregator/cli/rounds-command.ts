/**
 * `hearth rounds`: watch a running aggregator's rounds through its admin API.
 *
 *   hearth rounds list   [--model M] [--limit N] [--json]      newest first
 *   hearth rounds status <id> [--watch] [--json]               one round; --watch until it ends
 *
 * Every subcommand takes `--url` (default http://127.0.0.1:8787) and `--token` (or the
 * `HEARTH_ADMIN_TOKEN` environment variable). Exit codes: 0 done; 1 failed (the error's code is
 * printed); 2 bad usage.
 */
import { parseArgs } from 'node:util'
import type { ParseArgsConfig } from 'node:util'
import type { RoundRecord } from '../store/store.ts'
import { textTable } from './text-table.ts'
import { ADMIN_TOKEN_ENV, AdminClient, httpUrl } from './admin-client.ts'

export const USAGE = `Usage: hearth rounds <list|status> [options]

  hearth rounds list [--model <name>] [--limit <n>] [--json]
      The latest rounds, newest first: stage, cohort, uploads, dropouts, outcome.
  hearth rounds status <id> [--watch] [--json]
      One round. With --watch, shows its progress until it publishes or aborts.

Options:
  --url <url>       the aggregator (default http://127.0.0.1:8787)
  --token <token>   its admin token (env ${ADMIN_TOKEN_ENV})
  --interval <ms>   how often --watch asks (default 1000)
  -h, --help        show this help`

const OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  url: { type: 'string' },
  token: { type: 'string' },
  model: { type: 'string' },
  limit: { type: 'string' },
  watch: { type: 'boolean' },
  json: { type: 'boolean' },
  interval: { type: 'string' },
} as const satisfies ParseArgsConfig['options']

class UsageError extends Error {
  override readonly name = 'UsageError'
}

interface Parsed {
  readonly subcommand: 'list' | 'status'
  readonly client: AdminClient
  readonly id: number | undefined
  readonly model: string | undefined
  readonly limit: number | undefined
  readonly watch: boolean
  readonly json: boolean
  readonly intervalMs: number
}

function parse(argv: readonly string[], env: NodeJS.ProcessEnv): Parsed | 'help' {
  let parsed
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, strict: true, allowPositionals: true })
  } catch (error) {
    throw new UsageError((error as Error).message)
  }
  const { values, positionals } = parsed
  if (values.help === true) return 'help'
  const [subcommand, idText, ...extra] = positionals
  if (subcommand !== 'list' && subcommand !== 'status') throw new UsageError(subcommand === undefined ? 'a subcommand is required' : `unknown subcommand "${subcommand}"`)
  if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`)
  const url = httpUrl(values.url ?? 'http://127.0.0.1:8787')
  if (url === null) throw new UsageError(`--url must be an http(s) URL, got "${values.url}"`)
  const positive = (text: string | undefined, name: string): number | undefined => {
    if (text === undefined) return undefined
    const n = Number(text)
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`${name} must be a positive integer, got "${text}"`)
    return n
  }
  const id = positive(idText, 'the round id')
  if (subcommand === 'status' && id === undefined) throw new UsageError('status needs a round id')
  if (subcommand === 'list' && id !== undefined) throw new UsageError('list takes no round id')
  return {
    subcommand,
    client: new AdminClient(url, values.token ?? (env[ADMIN_TOKEN_ENV] || undefined)),
    id,
    model: values.model,
    limit: positive(values.limit, '--limit'),
    watch: values.watch === true,
    json: values.json === true,
    intervalMs: positive(values.interval, '--interval') ?? 1000,
  }
}

/** One line describing where a round stands, e.g. `round 12 default v3 training 4/5 uploads ▇▇▇▇▁ 1 dropped`. */
export function describeRound(round: RoundRecord): string {
  const selected = round.participants
  const bar = selected > 0 ? ` ${progressBar(round.uploadsAccepted / selected, 10)}` : ''
  const end =
    round.outcome === null
      ? ''
      : round.outcome === 'published'
        ? ` → published v${round.publishedVersion}`
        : ` → aborted: ${round.reason ?? 'no reason recorded'}`
  const privacy = round.privacy === null ? '' : ` ε ${round.privacy.epsilonBefore.toFixed(2)}→${round.privacy.epsilonIfPublished.toFixed(2)}`
  return `round ${round.id} ${round.model} v${round.baseVersion} ${round.stage} ${round.uploadsAccepted}/${selected} uploads${bar} ${round.dropped} dropped${privacy}${end}`
}

function progressBar(fraction: number, width: number): string {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * width)
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`
}

function table(rounds: readonly RoundRecord[]): string {
  const rows = rounds.map((r) => [
    String(r.id),
    r.model,
    r.stage,
    `${r.uploadsAccepted}/${r.participants}`,
    String(r.dropped),
    r.outcome ?? 'running',
    r.publishedVersion === null ? '' : `v${r.publishedVersion}`,
    new Date(r.createdAt).toISOString().replace('T', ' ').slice(0, 19),
  ])
  const header = ['ID', 'MODEL', 'STAGE', 'UPLOADS', 'DROPPED', 'OUTCOME', 'VERSION', 'CREATED (UTC)']
  return textTable(header, rows)
}

async function watch(client: AdminClient, id: number, intervalMs: number, json: boolean): Promise<RoundRecord> {
  const live = process.stdout.isTTY === true && !json
  let last = ''
  for (;;) {
    const round = await client.get<RoundRecord>(`/admin/rounds/${id}`)
    const text = describeRound(round)
    if (text !== last && !json) {
      // On a terminal the line is redrawn in place; in a log each change gets its own line.
      process.stdout.write(live ? `\r\x1b[2K${text}` : `${text}\n`)
      last = text
    }
    if (round.outcome !== null) {
      if (live) process.stdout.write('\n')
      return round
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}

/** The `CommandModule` entry point: `argv` is what follows `hearth rounds`. */
export async function run(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let command
  try {
    command = parse(argv, env)
  } catch (error) {
    if (!(error instanceof UsageError)) throw error
    console.error(`hearth rounds: ${error.message}\n\n${USAGE}`)
    return 2
  }
  if (command === 'help') {
    console.log(USAGE)
    return 0
  }
  const { client } = command
  if (command.subcommand === 'list') {
    const query = new URLSearchParams()
    if (command.model !== undefined) query.set('model', command.model)
    if (command.limit !== undefined) query.set('limit', String(command.limit))
    const { rounds } = await client.get<{ rounds: RoundRecord[] }>(`/admin/rounds${query.size > 0 ? `?${query}` : ''}`)
    console.log(command.json ? JSON.stringify(rounds) : rounds.length === 0 ? 'No rounds yet.' : table(rounds))
    return 0
  }
  const id = command.id as number
  const round = command.watch ? await watch(client, id, command.intervalMs, command.json) : await client.get<RoundRecord>(`/admin/rounds/${id}`)
  if (command.json) console.log(JSON.stringify(round))
  else if (!command.watch) console.log(describeRound(round))
  return 0
}
