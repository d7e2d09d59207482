/**
 * Argument checks for the pure math of `protocol/dp` (STYLE #3): `TypeError` for the wrong
 * type, `RangeError` for a value out of range, the message naming the parameter.
 */

/** Throws unless `value` is a finite number (not NaN, not ±Infinity). */
export function checkFinite(value: unknown, name: string): asserts value is number {
  if (typeof value !== 'number') throw new TypeError(`${name} must be a number, got ${typeof value}`)
  if (!Number.isFinite(value)) throw new RangeError(`${name} must be finite, got ${value}`)
}

/** Throws unless `value` is a finite number in [min, max] (bounds optional, inclusive). */
export function checkRange(value: unknown, name: string, min: number, max: number): asserts value is number {
  checkFinite(value, name)
  if (value < min || value > max) throw new RangeError(`${name} must be in [${min}, ${max}], got ${value}`)
}

/** Throws unless `value` is a finite number > 0. */
export function checkPositive(value: unknown, name: string): asserts value is number {
  checkFinite(value, name)
  if (!(value > 0)) throw new RangeError(`${name} must be > 0, got ${value}`)
}

/** Throws unless `value` is a finite number >= 0. */
export function checkNonNegative(value: unknown, name: string): asserts value is number {
  checkFinite(value, name)
  if (!(value >= 0)) throw new RangeError(`${name} must be >= 0, got ${value}`)
}

/** Throws unless `value` is a safe integer in [min, max]. */
export function checkInteger(value: unknown, name: string, min: number, max = Number.MAX_SAFE_INTEGER): asserts value is number {
  if (typeof value !== 'number') throw new TypeError(`${name} must be a number, got ${typeof value}`)
  if (!Number.isSafeInteger(value)) throw new RangeError(`${name} must be an integer, got ${value}`)
  if (value < min || value > max) throw new RangeError(`${name} must be in [${min}, ${max}], got ${value}`)
}

/** Throws unless 0 < delta < 1. */
export function checkDelta(value: unknown, name = 'delta'): asserts value is number {
  checkFinite(value, name)
  if (!(value > 0 && value < 1)) throw new RangeError(`${name} must be in (0, 1), got ${value}`)
}
