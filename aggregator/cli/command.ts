/** The command-line prologue the aggregator's `hearth` commands share: usage errors and `--help`. */
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
