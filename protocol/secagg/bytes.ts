/**
 * Byte helpers for secure aggregation: base64 for bytes inside JSON control messages
 * (RFC 4648 §4, with padding) and little-endian framing of small integers. No cryptography.
 */
import { HearthError } from '../errors.ts'

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
const DECODE = new Int16Array(128).fill(-1)
for (let i = 0; i < ALPHABET.length; i++) DECODE[ALPHABET.charCodeAt(i)] = i

/** Standard base64 with padding (RFC 4648 §4). */
export function toBase64(bytes: Uint8Array): string {
  let out = ''
  let i = 0
  for (; i + 2 < bytes.length; i += 3) {
    const n = ((bytes[i] as number) << 16) | ((bytes[i + 1] as number) << 8) | (bytes[i + 2] as number)
    out += ALPHABET[n >>> 18]! + ALPHABET[(n >>> 12) & 63]! + ALPHABET[(n >>> 6) & 63]! + ALPHABET[n & 63]!
  }
  const rest = bytes.length - i
  if (rest === 1) {
    const n = (bytes[i] as number) << 16
    out += ALPHABET[n >>> 18]! + ALPHABET[(n >>> 12) & 63]! + '=='
  } else if (rest === 2) {
    const n = ((bytes[i] as number) << 16) | ((bytes[i + 1] as number) << 8)
    out += ALPHABET[n >>> 18]! + ALPHABET[(n >>> 12) & 63]! + ALPHABET[(n >>> 6) & 63]! + '='
  }
  return out
}

/**
 * Decodes standard padded base64. Throws `HEARTH_ERR_MALFORMED_MESSAGE` naming `field` when the
 * text is not canonical base64 or does not decode to `expectedLength` bytes (when given).
 */
export function fromBase64(text: string, field: string, expectedLength?: number): Uint8Array {
  const fail = (why: string): never => {
    throw new HearthError('HEARTH_ERR_MALFORMED_MESSAGE', `${field}: ${why}`)
  }
  if (typeof text !== 'string') fail('expected a base64 string')
  if (text.length % 4 !== 0) fail('base64 length is not a multiple of 4')
  const pad = text.endsWith('==') ? 2 : text.endsWith('=') ? 1 : 0
  const length = (text.length / 4) * 3 - pad
  if (expectedLength !== undefined && length !== expectedLength) {
    fail(`expected ${expectedLength} bytes, got ${length}`)
  }
  const out = new Uint8Array(length)
  let o = 0
  for (let i = 0; i < text.length; i += 4) {
    let n = 0
    for (let j = 0; j < 4; j++) {
      const c = text.charCodeAt(i + j)
      const isPad = c === 61 && i + j >= text.length - pad
      const v = isPad ? 0 : c < 128 ? (DECODE[c] as number) : -1
      if (v < 0) fail(`invalid base64 character at ${i + j}`)
      n = (n << 6) | v
    }
    if (o < length) out[o++] = n >>> 16
    if (o < length) out[o++] = (n >>> 8) & 0xff
    if (o < length) out[o++] = n & 0xff
  }
  return out
}

/** Concatenates byte arrays into a fresh buffer. */
export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  let length = 0
  for (const p of parts) length += p.length
  const out = new Uint8Array(length)
  let offset = 0
  for (const p of parts) {
    out.set(p, offset)
    offset += p.length
  }
  return out
}

/** The little-endian bytes of each uint32 in `values`. */
export function u32le(...values: readonly number[]): Uint8Array {
  const out = new Uint8Array(4 * values.length)
  const view = new DataView(out.buffer)
  values.forEach((v, i) => view.setUint32(4 * i, v, true))
  return out
}

/** The bytes of an ASCII label (protocol constants only; `TextEncoder` is not in ES2022). */
export function ascii(text: string): Uint8Array {
  const out = new Uint8Array(text.length)
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c > 0x7f) throw new RangeError(`label must be ASCII, got ${JSON.stringify(text)}`)
    out[i] = c
  }
  return out
}

/** Equality of two byte arrays (not constant time: use only on public data). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** True when the host stores typed-array words little-endian (every mainstream engine). */
export const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1
