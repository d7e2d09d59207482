/**
 * `hearth models`: a running aggregator's models, and rollback, through its admin API.
 *
 *   hearth models list [--json]                       each model with its latest version
 *   hearth models rollback --model M --to N [--actor NAME] [--json]
 *       publishes a new version with version N's weights (recorded in the audit log)
 *
 * Every subcommand takes `--url` (default http://127.0.0.1:8787) and `--token` (or the
 * `HEARTH_ADMIN_TOKEN` environment variable). `--actor` names the operator in the audit log; the
 * name is self-declared. Exit codes: 0 done; 1 failed (the error's code is printed); 2 bad usage.
 */
import type { ParseArgsConfig } from 'node:util'
import type { Static } from 'typebox'
import { ACTOR_HEADER } from '../audit/actor.ts'
import type { ModelSummarySchema, RollbackResultSchema } from '../plugins/admin-models.ts'
import { textTable } from './text-table.ts'
import { ADMIN_TOKEN_ENV, AdminClient, httpUrl } from './admin-client.ts'
import { parseCommand, parseFlags, UsageError } from './command.ts'

export const USAGE = `Usage: hearth models <list|rollback> [options]

  hearth models list [--json]
      The served models: architecture, vector length, latest version and what produced it.
  hearth models rollback --model <name> --to <version> [--actor <name>] [--json]
      Publishes a new version with the weights of <version>; versions stay monotonic, so
      devices move forward to it. Refused while a round of the model runs.

Options:
  --url <url>       the aggregator (default http://127.0.0.1:8787)
  --token <token>   its admin token (env ${ADMIN_TOKEN_ENV})
  --actor <name>    your name in the audit log (self-declared; recorded as admin:<name>)
  -h, --help        show this help`

const OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  url: { type: 'string' },
  token: { type: 'string' },
  model: { type: 'string' },
  to: { type: 'string' },
  actor: { type: 'string' },
  json: { type: 'boolean' },
} as const satisfies ParseArgsConfig['options']

type ModelSummary = Static<typeof ModelSummarySchema>
export type RollbackResult = Static<typeof RollbackResultSchema>

type Parsed =
  | { readonly subcommand: 'list'; readonly client: AdminClient; readonly json: boolean }
  | { readonly subcommand: 'rollback'; readonly client: AdminClient; readonly json: boolean; readonly model: string; readonly to: number }

function parse(argv: readonly string[], env: NodeJS.ProcessEnv): Parsed | 'help' {
  const { values, positionals } = parseFlags({ args: [...argv], options: OPTIONS, strict: true, allowPositionals: true })
  if (values.help === true) return 'help'
  const [subcommand, ...extra] = positionals
  if (subcommand !== 'list' && subcommand !== 'rollback') throw new UsageError(subcommand === undefined ? 'a subcommand is required' : `unknown subcommand "${subcommand}"`)
  if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`)
  const url = httpUrl(values.url ?? 'http://127.0.0.1:8787')
  if (url === null) throw new UsageError(`--url must be an http(s) URL, got "${values.url}"`)
  const headers: Record<string, string> = values.actor === undefined ? {} : { [ACTOR_HEADER]: values.actor }
  const client = new AdminClient(url, values.token ?? (env[ADMIN_TOKEN_ENV] || undefined), headers)
  const json = values.json === true
  if (subcommand === 'list') {
    if (values.model !== undefined || values.to !== undefined) throw new UsageError('list takes no --model or --to')
    return { subcommand, client, json }
  }
  if (values.model === undefined || values.model === '') throw new UsageError('rollback needs --model')
  const to = Number(values.to)
  if (values.to === undefined || !Number.isInteger(to) || to < 1) throw new UsageError(`--to must be a positive version number, got "${values.to ?? ''}"`)
  return { subcommand, client, json, model: values.model, to }
}

function table(models: readonly ModelSummary[]): string {
  const rows = models.map((m) => [
    m.name,
    m.architecture,
    String(m.vectorLength),
    `v${m.latestVersion}`,
    m.latestRoundId === null ? (m.latestVersion === 1 ? 'initial' : 'rollback') : `round ${m.latestRoundId}`,
    new Date(m.latestVersionAt).toISOString().replace('T', ' ').slice(0, 19),
  ])
  const header = ['MODEL', 'ARCHITECTURE', 'LENGTH', 'LATEST', 'FROM', 'PUBLISHED (UTC)']
  return textTable(header, rows)
}

/** The `CommandModule` entry point: `argv` is what follows `hearth models`. */
export async function run(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const command = parseCommand('hearth models', USAGE, () => parse(argv, env))
  if (typeof command === 'number') return command
  if (command.subcommand === 'list') {
    const { models } = await command.client.get<{ models: ModelSummary[] }>('/admin/models')
    console.log(command.json ? JSON.stringify(models) : models.length === 0 ? 'No models.' : table(models))
    return 0
  }
  const result = await command.client.post<RollbackResult>(`/admin/models/${encodeURIComponent(command.model)}/rollback`, { toVersion: command.to })
  console.log(
    command.json
      ? JSON.stringify(result)
      : `${result.model}: published v${result.newVersion} with the weights of v${result.toVersion} (was v${result.fromVersion}); audit entry ${result.auditId}`,
  )
  return 0
}
