/**
 * `hearth audit export`: the whole audit log as JSON, oldest entry first.
 *
 *   hearth audit export [--data-dir D | --url U [--token T]] [--output FILE]
 *
 * Like `hearth ledger export`: from the data directory (default `.hearth`) it reads
 * `aggregator.db` read-only, also while the aggregator runs; from a running aggregator it pages
 * through `GET /admin/audit` with the admin token (`--token`, or `HEARTH_ADMIN_TOKEN`).
 *
 * Exit codes: 0 exported; 1 failed (the error's code is printed); 2 bad usage.
 */
import type { ParseArgsConfig } from 'node:util'
import type { AuditEntry, AuditQuery } from '../store/store.ts'
import { AdminClient } from './admin-client.ts'
import { parseCommand, parseFlags, parseSubcommand } from './command.ts'
import { openDataDir, parseSource, writeJson } from './ledger-command.ts'
import type { LedgerSource } from './ledger-command.ts'

export const USAGE = `Usage: hearth audit export [--data-dir <dir> | --url <url> [--token <token>]] [--output <file>]

Prints the audit log as JSON, oldest entry first: every admin action (such as a model rollback)
and every round's outcome (configuration hash, participant count, DP event, published version).

Options:
  --data-dir <dir>    read aggregator.db from this directory, read-only (default .hearth)
  --url <url>         ask a running aggregator instead, e.g. http://127.0.0.1:8787
  --token <token>     its admin token (env HEARTH_ADMIN_TOKEN)
  --output <file>     write the JSON there instead of standard output
  -h, --help          show this help`

const OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  'data-dir': { type: 'string' },
  url: { type: 'string' },
  token: { type: 'string' },
  output: { type: 'string' },
} as const satisfies ParseArgsConfig['options']

/** Entries fetched per request or query. */
const PAGE = 500

/** The exported document. */
export interface AuditExport {
  /** Epoch milliseconds. */
  readonly exportedAt: number
  /** Oldest first. */
  readonly entries: readonly AuditEntry[]
}

/** Parses the arguments after `hearth audit export`; `help` when asked. Throws a `UsageError` (`command.ts`). */
function parseExportArgs(argv: readonly string[], env: NodeJS.ProcessEnv): { readonly source: LedgerSource; readonly output: string | undefined } | 'help' {
  const { values } = parseFlags({ args: [...argv], options: OPTIONS, strict: true, allowPositionals: false })
  if (values.help === true) return 'help'
  return { source: parseSource(values, env), output: values.output }
}

/** Reads every entry from `source`, paging newest first, and returns them oldest first. */
export async function exportAudit(source: LedgerSource, now: number = Date.now()): Promise<AuditExport> {
  if (source.kind === 'url') {
    const client = new AdminClient(source.url, source.token)
    return { exportedAt: now, entries: await readAll((query) => client.get<{ entries: AuditEntry[] }>(`/admin/audit?${pageParams(query)}`).then((page) => page.entries)) }
  }
  const store = openDataDir(source.dataDir)
  try {
    return { exportedAt: now, entries: await readAll((query) => store.listAudit(query)) }
  } finally {
    await store.close()
  }
}

async function readAll(page: (query: AuditQuery) => Promise<AuditEntry[]>): Promise<AuditEntry[]> {
  const entries: AuditEntry[] = []
  let before: number | undefined
  for (;;) {
    const batch = await page(before === undefined ? { limit: PAGE } : { limit: PAGE, before })
    entries.push(...batch)
    const last = batch[batch.length - 1]
    if (batch.length < PAGE || last === undefined) return entries.reverse()
    before = last.id
  }
}

function pageParams(query: AuditQuery): URLSearchParams {
  const params = new URLSearchParams({ limit: String(query.limit) })
  if (query.before !== undefined) params.set('before', String(query.before))
  return params
}

/** The `CommandModule` entry point: `argv` is what follows `hearth audit`. */
export async function run(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const sub = parseSubcommand('hearth audit', USAGE, ['export'], argv)
  if (typeof sub === 'number') return sub
  const command = parseCommand('hearth audit export', USAGE, () => parseExportArgs(sub.argv, env))
  if (typeof command === 'number') return command
  writeJson(await exportAudit(command.source), command.output) // a HearthError is printed by bin/cli.ts
  return 0
}
