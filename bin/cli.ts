/**
 * The `hearth` command: a table of subcommands, each loaded only when called so that
 * `hearth privacy ...` never pays for TensorFlow.js or SQLite.
 */
import { HearthError } from '../protocol/errors.ts'

/** A subcommand module: parses its own arguments and returns the process exit code. */
export interface CommandModule {
  run(argv: string[]): Promise<number>
}

interface CommandEntry {
  readonly summary: string
  readonly load: () => Promise<CommandModule>
}

const COMMANDS: Record<string, CommandEntry> = {
  demo: { summary: 'Run the aggregator, the demo app and simulated devices (npm start)', load: () => import('../demo/demo-command.ts') },
  aggregator: { summary: 'Run the federated-averaging aggregator', load: () => import('../aggregator/cli/aggregator-command.ts') },
  privacy: { summary: 'Privacy accountant: epsilon of a schedule, or the noise for a budget', load: () => import('./privacy-command.ts') },
  ledger: { summary: 'Export the privacy ledger of a model as JSON, for audit', load: () => import('../aggregator/cli/ledger-command.ts') },
  rounds: { summary: 'List, watch, create, start and stop the rounds of a running aggregator', load: () => import('../aggregator/cli/rounds-command.ts') },
  models: { summary: 'List the models of a running aggregator, or roll one back to an earlier version', load: () => import('../aggregator/cli/models-command.ts') },
  audit: { summary: 'Export the audit log (admin actions, round outcomes) as JSON', load: () => import('../aggregator/cli/audit-command.ts') },
  simulate: { summary: 'Run a protocol in one process with simulated clients (secagg)', load: () => import('../bench/simulate-command.ts') },
  bench: { summary: 'Run a benchmark: quality (HR@10 on MovieLens), rank and train (speed in Chromium)', load: () => import('../bench/bench-command.ts') },
}

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length), 8)
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`)
  return ['Usage: hearth <command> [options]', '', 'Commands:', ...lines, '', 'Run `hearth <command> --help` for a command’s options.'].join('\n')
}

/** Runs the command line `argv` (without the node and script paths); returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage())
    return name === undefined ? 1 : 0
  }
  const entry = COMMANDS[name]
  if (entry === undefined) {
    console.error(`hearth: unknown command "${name}"\n\n${usage()}`)
    return 2
  }
  try {
    return await (await entry.load()).run(rest)
  } catch (error) {
    if (error instanceof HearthError) {
      console.error(`hearth ${name}: ${error.code}: ${error.message}`)
      return 1
    }
    throw error
  }
}
