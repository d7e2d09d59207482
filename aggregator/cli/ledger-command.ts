/**
 * `hearth ledger export`: a model's privacy ledger as JSON, for audit.
 *
 *   hearth ledger export --model M [--data-dir D | --url U [--token T]] [--output FILE]
 *
 * From the data directory (default `.hearth`) it reads `aggregator.db` read-only — while the
 * aggregator runs, too (SQLite WAL lets readers in). From a running aggregator it asks
 * `GET /admin/models/:model/ledger` with the admin token (`--token`, or `HEARTH_ADMIN_TOKEN`).
 * Either way the document is built by `privacy/ledger-export.ts`; offline, the budget and mode
 * are those recorded with the last entry.
 *
 * Exit codes: 0 exported; 1 failed (the error's code is printed); 2 bad usage.
 */
import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { ParseArgsConfig } from 'node:util'
import { HearthError } from '../../protocol/errors.ts'
import { buildLedgerExport } from '../privacy/ledger-export.ts'
import type { LedgerExport } from '../privacy/ledger-export.ts'
import { DATABASE_FILE, SqliteStore } from '../store/sqlite-store.ts'
import { ADMIN_TOKEN_ENV, AdminClient, httpUrl } from './admin-client.ts'
import { parseCommand, parseFlags, parseSubcommand, UsageError } from './command.ts'

export const USAGE = `Usage: hearth ledger export --model <name> [--data-dir <dir> | --url <url> [--token <token>]] [--output <file>]

Prints a model's privacy ledger as JSON: every DP round with its parameters (mode, q, z, C) and
cumulative epsilon, and the epsilon of an independent replay of the whole ledger.

Options:
  --model <name>      the model (required)
  --data-dir <dir>    read aggregator.db from this directory, read-only (default .hearth)
  --url <url>         ask a running aggregator instead, e.g. http://127.0.0.1:8787
  --token <token>     its admin token (env HEARTH_ADMIN_TOKEN)
  --output <file>     write the JSON there instead of standard output
  -h, --help          show this help`

const OPTIONS = {
  help: { type: 'boolean', short: 'h' },
  model: { type: 'string' },
  'data-dir': { type: 'string' },
  url: { type: 'string' },
  token: { type: 'string' },
  output: { type: 'string' },
} as const satisfies ParseArgsConfig['options']

/** Where to read the ledger from. */
export type LedgerSource = { readonly kind: 'data-dir'; readonly dataDir: string } | { readonly kind: 'url'; readonly url: string; readonly token: string | undefined }

export interface ExportCommand {
  readonly model: string
  readonly source: LedgerSource
  readonly output: string | undefined
}

/** Parses the arguments after `hearth ledger export`; `help` when asked. Throws {@link UsageError}. */
export function parseExportArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): ExportCommand | 'help' {
  const { values } = parseFlags({ args: [...argv], options: OPTIONS, strict: true, allowPositionals: false })
  if (values.help === true) return 'help'
  const model = values.model
  if (model === undefined || model === '') throw new UsageError('--model is required')
  return { model, source: parseSource(values, env), output: values.output }
}

/**
 * Where an export reads from: `--url` (with `--token` or `HEARTH_ADMIN_TOKEN`) or `--data-dir`
 * (default `.hearth`). Shared by the exports of `hearth ledger` and `hearth audit`.
 */
export function parseSource(
  values: { readonly url?: string | undefined; readonly token?: string | undefined; readonly 'data-dir'?: string | undefined },
  env: NodeJS.ProcessEnv,
): LedgerSource {
  if (values.url !== undefined && values['data-dir'] !== undefined) throw new UsageError('give --data-dir or --url, not both')
  if (values.token !== undefined && values.url === undefined) throw new UsageError('--token goes with --url')
  if (values.url === undefined) return { kind: 'data-dir', dataDir: values['data-dir'] ?? '.hearth' }
  const url = httpUrl(values.url)
  if (url === null) throw new UsageError(`--url must be an http(s) URL, got "${values.url}"`)
  return { kind: 'url', url, token: values.token ?? (env[ADMIN_TOKEN_ENV] || undefined) }
}

/** Reads the ledger of `model` from `source`. Throws `HearthError` with the failure's code. */
export async function exportLedger(model: string, source: LedgerSource): Promise<LedgerExport> {
  if (source.kind === 'url') {
    return new AdminClient(source.url, source.token).get<LedgerExport>(`/admin/models/${encodeURIComponent(model)}/ledger`)
  }
  const file = join(source.dataDir, DATABASE_FILE)
  const store = openDataDir(source.dataDir)
  try {
    if ((await store.getModel(model)) === undefined) throw new HearthError('HEARTH_ERR_UNKNOWN_MODEL', `no model named ${JSON.stringify(model)} in ${file}`)
    const [entries, state] = await Promise.all([store.listLedger(model), store.getPrivacyState(model)])
    return buildLedgerExport({ model, entries, state, now: Date.now() })
  } finally {
    await store.close()
  }
}

/** The store of `dataDir`, read-only. Throws `HEARTH_ERR_INVALID_CONFIG` when it has none. */
export function openDataDir(dataDir: string): SqliteStore {
  const file = join(dataDir, DATABASE_FILE)
  if (!existsSync(file)) throw new HearthError('HEARTH_ERR_INVALID_CONFIG', `no ${DATABASE_FILE} in ${dataDir}`)
  return SqliteStore.openReadOnly(file)
}

/** Writes `document` as indented JSON to `output`, or to standard output. */
export function writeJson(document: unknown, output: string | undefined): void {
  const json = `${JSON.stringify(document, null, 2)}\n`
  if (output === undefined) process.stdout.write(json)
  else writeFileSync(output, json)
}

/** The `CommandModule` entry point: `argv` is what follows `hearth ledger`. */
export async function run(argv: string[]): Promise<number> {
  const sub = parseSubcommand('hearth ledger', USAGE, ['export'], argv)
  if (typeof sub === 'number') return sub
  const command = parseCommand('hearth ledger export', USAGE, () => parseExportArgs(sub.argv))
  if (typeof command === 'number') return command
  const ledger = await exportLedger(command.model, command.source) // a HearthError is printed by bin/cli.ts
  writeJson(ledger, command.output)
  return 0
}
