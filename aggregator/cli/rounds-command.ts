/**
 * `hearth rounds`: watch and run a running aggregator's rounds through its admin API.
 *
 *   hearth rounds list   [--model M] [--limit N] [--json]      newest first
 *   hearth rounds status <id> [--watch] [--json]               one round; --watch until it ends
 *   hearth rounds create --config FILE [--json]                a round from a configuration document
 *   hearth rounds start  <id> [--watch] [--json]               opens it now or after the current round
 *   hearth rounds stop   <id> [--reason TEXT] [--json]         cancels or aborts it
 *
 * Every subcommand takes `--url` (default http://127.0.0.1:8787), `--token` (or the
 * `HEARTH_ADMIN_TOKEN` environment variable) and `--actor` (the operator's name in the audit
 * log). Exit codes: 0 done; 1 failed (the error's code is printed; a refused document lists
 * every problem); 2 bad usage.
 */
import { readFileSync } from 'node:fs'
import type { ParseArgsConfig } from 'node:util'
import { ACTOR_HEADER } from '../audit/actor.ts'
import { RoundDocumentError } from '../config/round-document.ts'
import type { Static } from 'typebox'
import type { RoundCreatedSchema, RoundStartedSchema } from '../schemas.ts'
import type { RoundRecord } from '../store/store.ts'
import { textTable } from './text-table.ts'
import { ADMIN_TOKEN_ENV, AdminClient, httpUrl } from './admin-client.ts'
import { parseCommand, parseFlags, UsageError } from './command.ts'

export const USAGE = `Usage: hearth rounds <list|status|create|start|stop> [options]

  hearth rounds list [--model <name>] [--limit <n>] [--json]
      The latest rounds, newest first: stage, cohort, uploads, dropouts, outcome.
  hearth rounds status <id> [--watch] [--json]
      One round. With --watch, shows its progress until it publishes or aborts.
  hearth rounds create --config <file> [--json]
      Creates a round from a round configuration document (docs/round-config.md); prints its
      id and the document's SHA-256. A refused document lists every problem.
  hearth rounds start <id> [--watch] [--json]
      Starts a created round: now, or as soon as the round in flight ends. With --watch, shows
      its progress until it publishes or aborts.
  hearth rounds stop <id> [--reason <text>] [--json]
      Cancels a created round, or aborts a running one; its devices are told why.

Options:
  --url <url>       the aggregator (default http://127.0.0.1:8787)
  --token <token>   its admin token (env ${ADMIN_TOKEN_ENV})
  --actor <name>    your name in the audit log (self-declared; recorded as admin:<name>)
  --interval <ms>   how often --watch asks (default 1000)
  -h, --help        show this help`

const SUBCOMMANDS = ['list', 'status', 'create', 'start', 'stop'] as const
type Subcommand = (typeof SUBCOMMANDS)[number]
/** Subcommands that name a round. */
const WITH_ID: ReadonlySet<Subcommand> = new Set(['status', 'start', 'stop'])

const OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  url: { type: 'string' },
  token: { type: 'string' },
  model: { type: 'string' },
  limit: { type: 'string' },
  watch: { type: 'boolean' },
  json: { type: 'boolean' },
  interval: { type: 'string' },
  config: { type: 'string' },
  reason: { type: 'string' },
  actor: { type: 'string' },
} as const satisfies ParseArgsConfig['options']

interface Parsed {
  readonly subcommand: Subcommand
  readonly client: AdminClient
  readonly id: number | undefined
  readonly model: string | undefined
  readonly limit: number | undefined
  readonly watch: boolean
  readonly json: boolean
  readonly intervalMs: number
  /** `--config` and the document it holds, for create. */
  readonly config: { readonly file: string; readonly document: unknown } | undefined
  readonly reason: string | undefined
}

function parse(argv: readonly string[], env: NodeJS.ProcessEnv): Parsed | 'help' {
  const { values, positionals } = parseFlags({ args: [...argv], options: OPTIONS, strict: true, allowPositionals: true })
  if (values.help === true) return 'help'
  const [subcommand, idText, ...extra] = positionals
  if (!isSubcommand(subcommand)) throw new UsageError(subcommand === undefined ? 'a subcommand is required' : `unknown subcommand "${subcommand}"`)
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
  if (WITH_ID.has(subcommand) && id === undefined) throw new UsageError(`${subcommand} needs a round id`)
  if (!WITH_ID.has(subcommand) && id !== undefined) throw new UsageError(`${subcommand} takes no round id`)
  if ((subcommand === 'create') !== (values.config !== undefined)) throw new UsageError(subcommand === 'create' ? 'create needs --config' : '--config goes with create')
  if (values.reason !== undefined && subcommand !== 'stop') throw new UsageError('--reason goes with stop')
  if (values.watch === true && subcommand !== 'status' && subcommand !== 'start') throw new UsageError('--watch goes with status and start')
  const headers: Record<string, string> = values.actor === undefined ? {} : { [ACTOR_HEADER]: values.actor }
  return {
    subcommand,
    client: new AdminClient(url, values.token ?? (env[ADMIN_TOKEN_ENV] || undefined), headers),
    id,
    model: values.model,
    limit: positive(values.limit, '--limit'),
    watch: values.watch === true,
    json: values.json === true,
    intervalMs: positive(values.interval, '--interval') ?? 1000,
    config: values.config === undefined ? undefined : { file: values.config, document: readDocument(values.config) },
    reason: values.reason,
  }
}

function isSubcommand(text: string | undefined): text is Subcommand {
  return SUBCOMMANDS.some((s) => s === text)
}

/** Reads `--config`: the document as JSON, judged by the aggregator (every problem at once). */
function readDocument(file: string): unknown {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (error) {
    throw new UsageError(`cannot read --config ${file}: ${(error as Error).message}`)
  }
  try {
    return JSON.parse(text) as unknown
  } catch (error) {
    throw new UsageError(`--config ${file} is not JSON: ${(error as Error).message}`)
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
  const command = parseCommand('hearth rounds', USAGE, () => parse(argv, env))
  if (typeof command === 'number') return command
  const { client } = command
  if (command.subcommand === 'list') {
    const query = new URLSearchParams()
    if (command.model !== undefined) query.set('model', command.model)
    if (command.limit !== undefined) query.set('limit', String(command.limit))
    const { rounds } = await client.get<{ rounds: RoundRecord[] }>(`/admin/rounds${query.size > 0 ? `?${query}` : ''}`)
    console.log(command.json ? JSON.stringify(rounds) : rounds.length === 0 ? 'No rounds yet.' : table(rounds))
    return 0
  }
  if (command.config !== undefined) return create(command.client, command.config, command.json)
  const id = command.id as number
  if (command.subcommand === 'start') {
    const started = await client.post<Static<typeof RoundStartedSchema>>(`/admin/rounds/${id}/start`, {})
    if (!command.json) console.log(started.begins === 'now' ? `round ${id} started: selection is open` : `round ${id} starts after the current round (${started.ahead} ahead)`)
    else if (!command.watch) console.log(JSON.stringify(started))
    if (!command.watch) return 0
  }
  if (command.subcommand === 'stop') {
    const stopped = await client.post<RoundRecord>(`/admin/rounds/${id}/stop`, command.reason === undefined ? {} : { reason: command.reason })
    console.log(command.json ? JSON.stringify(stopped) : describeRound(stopped))
    return 0
  }
  const round = command.watch ? await watch(client, id, command.intervalMs, command.json) : await client.get<RoundRecord>(`/admin/rounds/${id}`)
  if (command.json) console.log(JSON.stringify(round))
  else if (!command.watch) console.log(describeRound(round))
  return 0
}

/** `create`: posts the document; a refusal prints every problem and exits 1. */
async function create(client: AdminClient, { file, document }: { readonly file: string; readonly document: unknown }, json: boolean): Promise<number> {
  let created: Omit<Static<typeof RoundCreatedSchema>, 'round'> & { readonly round: RoundRecord }
  try {
    created = await client.post('/admin/rounds', document)
  } catch (error) {
    if (!(error instanceof RoundDocumentError)) throw error
    console.error(`hearth rounds create: the aggregator refused ${file}:\n${error.problems.map((p) => `  ${p}`).join('\n')}`)
    return 1
  }
  const { round, documentHash } = created
  console.log(json ? JSON.stringify(created) : `round ${round.id} created for model ${round.model}\ndocument sha256 ${documentHash}\nstart it with: hearth rounds start ${round.id}`)
  return 0
}
