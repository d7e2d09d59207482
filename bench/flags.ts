/** Command-line flags of the benchmarks: absent gives the default, anything else is checked. */
import { UsageError } from '../aggregator/cli/command.ts'

/** `value` as a positive integer, or `fallback` when absent; a UsageError naming `--name` otherwise. */
export function positiveInteger(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${name} must be a positive integer, got ${value}`)
  return n
}

/** `value` as a non-negative integer, or `fallback` when absent; a UsageError naming `--name` otherwise. */
export function nonNegativeInteger(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`--${name} must be a non-negative integer, got ${value}`)
  return n
}

/** `value` as a positive finite number, or `fallback` when absent; a UsageError naming `--name` otherwise. */
export function positiveNumber(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--${name} must be a positive number, got ${value}`)
  return n
}

/** `value` if it is one of `allowed`, undefined when absent; a UsageError naming `--name` otherwise. */
export function oneOf<T extends string>(value: string | undefined, allowed: readonly T[], name: string): T | undefined {
  if (value === undefined) return undefined
  const known = allowed.find((a) => a === value)
  if (known === undefined) throw new UsageError(`--${name} must be one of ${allowed.join(', ')}, got ${value}`)
  return known
}
