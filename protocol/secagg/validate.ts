/**
 * Shape checks for secure-aggregation control messages that arrive from the other side. The
 * aggregator may validate with its own schemas first; these checks are what the protocol
 * classes rely on, so they run regardless. Shape errors are `HEARTH_ERR_MALFORMED_MESSAGE`; a
 * message for another round or group is `HEARTH_ERR_SECAGG_REPLAY`.
 */
import { HearthError } from '../errors.ts'
import type { RoundContext } from './kdf.ts'

type Json = Record<string, unknown>

function fail(detail: string): never {
  throw new HearthError('HEARTH_ERR_MALFORMED_MESSAGE', detail)
}

/** Asserts `value` is a plain object whose `type` is `type`. */
export function expectMessage(value: unknown, type: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(`expected a ${type} message object`)
  const message = value as Json
  if (message.type !== type) fail(`expected type ${type}, got ${String(message.type)}`)
  return message
}

/** Asserts the message belongs to this round and group; anything else is a replay. */
export function expectContext(message: Json, context: RoundContext): void {
  if (message.roundId !== context.roundId || message.groupId !== context.groupId) {
    throw new HearthError(
      'HEARTH_ERR_SECAGG_REPLAY',
      `message for round ${String(message.roundId)} group ${String(message.groupId)} reached round ${context.roundId} group ${context.groupId}`,
    )
  }
}

/** An integer field in [min, max]. */
export function intField(message: Json, field: string, min: number, max: number): number {
  const v = message[field]
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) fail(`${field} must be an integer in [${min}, ${max}]`)
  return v
}

/** A string field. */
export function stringField(message: Json, field: string): string {
  const v = message[field]
  if (typeof v !== 'string') fail(`${field} must be a string`)
  return v
}

/** A boolean field. */
export function boolField(message: Json, field: string): boolean {
  const v = message[field]
  if (typeof v !== 'boolean') fail(`${field} must be a boolean`)
  return v
}

/** An array field whose items each pass `item`. */
export function arrayField<T>(message: Json, field: string, item: (value: unknown, where: string) => T): T[] {
  const v = message[field]
  if (!Array.isArray(v)) fail(`${field} must be an array`)
  return v.map((x, i) => item(x, `${field}[${i}]`))
}

/** Validator for a client index in 1..groupSize. */
export function indexItem(groupSize: number): (value: unknown, where: string) => number {
  return (value, where) => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > groupSize) {
      fail(`${where} must be a client index in [1, ${groupSize}]`)
    }
    return value
  }
}

/** Validator for an object item; returns it for field reads with the helpers above. */
export function objectItem(value: unknown, where: string): Json {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(`${where} must be an object`)
  return value as Json
}

/** Asserts that a list of indices has no repeats. */
export function expectDistinct(values: readonly number[], field: string): void {
  if (new Set(values).size !== values.length) fail(`${field} lists a client twice`)
}
