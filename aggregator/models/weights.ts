/**
 * Federated weight vectors as bytes: little-endian float32, the same payload the Weights frame
 * carries (`protocol/frames.ts`), so the stored digest is also the digest of what clients get.
 */
import { createHash } from 'node:crypto'
import type { ModelVersionRecord } from '../store/store.ts'

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1

/** The weights as little-endian float32 bytes, in a fresh buffer. */
export function weightsToBytes(weights: Float32Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength))
  const bytes = new Uint8Array(weights.length * 4)
  const view = new DataView(bytes.buffer)
  for (let i = 0; i < weights.length; i++) view.setFloat32(4 * i, weights[i] as number, true)
  return bytes
}

/** Reads little-endian float32 bytes into a fresh, aligned `Float32Array`. */
export function bytesToWeights(bytes: Uint8Array): Float32Array {
  if (bytes.byteLength % 4 !== 0) throw new RangeError(`weights bytes must be a multiple of 4, got ${bytes.byteLength}`)
  // Copy first: a Node Buffer may sit at any offset of a shared pool. Not `bytes.slice()`: on a
  // Buffer (node-postgres returns bytea as one) slice is a view of that pool, not a copy.
  const copy = new Uint8Array(bytes)
  if (LITTLE_ENDIAN) return new Float32Array(copy.buffer, 0, copy.byteLength / 4)
  const view = new DataView(copy.buffer)
  const weights = new Float32Array(copy.byteLength / 4)
  for (let i = 0; i < weights.length; i++) weights[i] = view.getFloat32(4 * i, true)
  return weights
}

/** Hex SHA-256 (FIPS 180-4) of `bytes`. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

/** A version record for `weights`, with its digest computed. */
export function versionRecord(
  model: string,
  version: number,
  weights: Float32Array,
  roundId: number | null,
  createdAt: number,
): ModelVersionRecord {
  return { model, version, weights, sha256: sha256Hex(weightsToBytes(weights)), createdAt, roundId }
}
