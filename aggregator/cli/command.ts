/** The command-line prologue the `hearth` commands share: subcommands, usage errors and `--help`. */
import { parseArgs } from 'node:util'
import type { ParseArgsConfig } from 'node:util'

/** Why the command line was rejected; printed with the usage, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError'
}

/** `parseArgs`, its errors (unknown flag, missing value...) thrown as {@link UsageError}s. */
export function parseFlags<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config)
  } catch (error) {
    throw new UsageError((error as Error).message)
  }
}

/**
 * Runs `parse` and returns the command it describes, or the exit code when there is nothing
 * left to do: 0 after printing `usage` for `help`, 2 after printing `<name>: <message>` and
 * `usage` to stderr for a {@link UsageError}. `name` is the command as typed, e.g.
 * `hearth ledger export`.
 */
export function parseCommand<T extends object>(name: string, usage: string, parse: () => T | 'help'): T | number {
  let command
  try {
    command = parse()
  } catch (error) {
    if (!(error instanceof UsageError)) throw error
    console.error(`${name}: ${error.message}\n\n${usage}`)
    return 2
  }
  if (command === 'help') {
    console.log(usage)
    return 0
  }
  return command
}

/**
 * The subcommand `argv` starts with, one of `subcommands`, and the arguments after it; or the
 * exit code when there is nothing to run: 1 after printing `usage` when there is none, 0 after
 * printing it for `help`, `--help` or `-h`, and 2 after printing `<name>: unknown subcommand "…"`
 * and `usage` to stderr. `name` is the command as typed, e.g. `hearth ledger`.
 */
export function parseSubcommand<S extends string>(
  name: string,
  usage: string,
  subcommands: readonly S[],
  argv: readonly string[],
): { readonly subcommand: S; readonly argv: string[] } | number {
  const [subcommand, ...rest] = argv
  if (subcommand === undefined || subcommand === 'help' || subcommand === '--help' || subcommand === '-h') {
    console.log(usage)
    return subcommand === undefined ? 1 : 0
  }
  const known = subcommands.find((s) => s === subcommand)
  if (known === undefined) {
    console.error(`${name}: unknown subcommand "${subcommand}"\n\n${usage}`)
    return 2
  }
  return { subcommand: known, argv: rest }
}
