/**
 * Turning storage failures into catalogued errors. IndexedDB reports a full disk as a
 * `DOMException` named `QuotaExceededError` (HTML §2.10 / IndexedDB 3.0 "quota"); Firefox before
 * version 83 used `NS_ERROR_DOM_QUOTA_REACHED`; legacy code 22 is the same exception.
 */
import { HearthError } from '../../protocol/errors.ts'

/** True when `error` says the device ran out of storage space. */
export function isQuotaError(error: unknown): boolean {
  if (error instanceof HearthError) return error.code === 'HEARTH_ERR_STORAGE_QUOTA'
  if (typeof error !== 'object' || error === null) return false
  const { name, code } = error as { name?: unknown; code?: unknown }
  return name === 'QuotaExceededError' || name === 'NS_ERROR_DOM_QUOTA_REACHED' || code === 22
}

/** `error` as a `HearthError`: quota, or storage failure with the original as `cause`. */
export function storageError(error: unknown, operation: string): HearthError {
  if (error instanceof HearthError) return error
  const detail = `${operation}: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`
  return new HearthError(isQuotaError(error) ? 'HEARTH_ERR_STORAGE_QUOTA' : 'HEARTH_ERR_STORAGE', detail, { cause: error })
}
