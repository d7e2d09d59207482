/**
 * Shamir t-of-n secret sharing of 32-byte secrets (A. Shamir, "How to Share a Secret", CACM
 * 22(11), 1979), over the prime field GF(p), p = 2^24 + 43.
 *
 * Why our own, and why this field: audited JavaScript packages share over GF(2^8) and so cap n
 * at 255 share holders, below the group sizes of plain SecAgg. A 24-bit prime keeps every product
 * of two field elements below 2^49, exact in a double, so arithmetic needs neither BigInt nor
 * a multi-precision library; the 256-bit secret is cut into eleven chunks of at most 24 bits
 * (big-endian, the last chunk 16 bits) and each chunk is shared with its own independent random
 * polynomial, which keeps Shamir's perfect secrecy chunk by chunk and for the whole secret.
 *
 * For each chunk s the dealer draws a_1..a_{t-1} uniformly from GF(p) and gives holder x the
 * value f(x) = s + a_1 x + ... + a_{t-1} x^{t-1} (Horner). Any t holders recover s = f(0) by
 * Lagrange interpolation at 0: s = Σ_i y_i λ_i with λ_i = Π_{j≠i} x_j / (x_j − x_i) (Shamir
 * 1979 §2); fewer than t learn nothing. Holders are the client indices 1..n (never 0).
 *
 * Share layout: eleven field elements, uint32 little-endian, 44 bytes.
 */
import { HearthError } from '../errors.ts'
import { randomWords } from './webcrypto.ts'

/** The field modulus p = 2^24 + 43 (prime; checked in the tests). */
export const SHAMIR_PRIME = 16_777_259
export const SECRET_BYTES = 32
/** Chunks per secret: ⌈256 / 24⌉. */
export const SECRET_CHUNKS = 11
export const SHARE_BYTES = 4 * SECRET_CHUNKS

const P = SHAMIR_PRIME

/** One holder's share of a secret. */
export interface Share {
  /** The holder's x-coordinate (its client index), 1 <= x < p. */
  readonly x: number
  readonly share: Uint8Array
}

function mul(a: number, b: number): number {
  return (a * b) % P // a, b < 2^24.000004 so a·b < 2^49: exact in a double
}

function pow(base: number, exp: number): number {
  let result = 1
  let b = base % P
  let e = exp
  while (e > 0) {
    if (e % 2 === 1) result = mul(result, b)
    b = mul(b, b)
    e = Math.floor(e / 2)
  }
  return result
}

/** a^{-1} mod p by Fermat's little theorem, a^{p-2}. */
function inverse(a: number): number {
  if (a % P === 0) throw new RangeError('zero has no inverse')
  return pow(a, P - 2)
}

/** Splits a 32-byte secret into its eleven chunks (big-endian 24-bit groups). */
export function secretToChunks(secret: Uint8Array): number[] {
  if (!(secret instanceof Uint8Array) || secret.length !== SECRET_BYTES) {
    throw new RangeError(`secret must be ${SECRET_BYTES} bytes`)
  }
  const chunks: number[] = []
  for (let j = 0; j < SECRET_CHUNKS; j++) {
    let v = 0
    for (let b = 3 * j; b < Math.min(3 * j + 3, SECRET_BYTES); b++) v = v * 256 + (secret[b] as number)
    chunks.push(v)
  }
  return chunks
}

/** The inverse of {@link secretToChunks}; throws when a chunk does not fit its bytes. */
export function chunksToSecret(chunks: readonly number[]): Uint8Array {
  const out = new Uint8Array(SECRET_BYTES)
  for (let j = 0; j < SECRET_CHUNKS; j++) {
    const width = Math.min(3, SECRET_BYTES - 3 * j)
    let v = chunks[j] as number
    if (!(v >= 0 && v < 2 ** (8 * width))) {
      throw new HearthError('HEARTH_ERR_SECAGG_TAMPERED', 'the reconstructed secret is out of range: the shares are inconsistent')
    }
    for (let b = 3 * j + width - 1; b >= 3 * j; b--) {
      out[b] = v % 256
      v = Math.floor(v / 256)
    }
  }
  return out
}

/** `count` uniform elements of GF(p) from the CSPRNG, by rejection sampling of 25-bit words. */
export function randomFieldElements(count: number): number[] {
  const out: number[] = []
  while (out.length < count) {
    const words = randomWords(2 * (count - out.length) + 8)
    for (let i = 0; i < words.length && out.length < count; i++) {
      const w = (words[i] as number) & 0x1ffffff
      if (w < P) out.push(w)
    }
  }
  return out
}

function assertHolders(xs: readonly number[], threshold: number): void {
  if (!Number.isInteger(threshold) || threshold < 1) throw new RangeError(`threshold must be a positive integer, got ${threshold}`)
  if (xs.length < threshold) throw new RangeError(`${xs.length} holders cannot meet threshold ${threshold}`)
  const seen = new Set<number>()
  for (const x of xs) {
    if (!Number.isInteger(x) || x < 1 || x >= P) throw new RangeError(`holder x-coordinate must be an integer in [1, p), got ${x}`)
    if (seen.has(x)) throw new RangeError(`holder x-coordinate ${x} appears twice`)
    seen.add(x)
  }
}

/**
 * Shares with given polynomial coefficients: `coefficients[j]` holds a_1..a_{t-1} of chunk j.
 * Public for known-answer tests; use {@link splitSecret} otherwise.
 */
export function splitWithCoefficients(secret: Uint8Array, coefficients: readonly (readonly number[])[], xs: readonly number[]): Share[] {
  const chunks = secretToChunks(secret)
  if (coefficients.length !== SECRET_CHUNKS) throw new RangeError(`coefficients must list ${SECRET_CHUNKS} chunks`)
  const threshold = (coefficients[0] as readonly number[]).length + 1
  assertHolders(xs, threshold)
  for (const c of coefficients) {
    if (c.length !== threshold - 1) throw new RangeError('every chunk needs the same number of coefficients')
    for (const a of c) if (!Number.isInteger(a) || a < 0 || a >= P) throw new RangeError(`coefficient ${a} is not in GF(p)`)
  }
  return xs.map((x) => {
    const share = new Uint8Array(SHARE_BYTES)
    const view = new DataView(share.buffer)
    for (let j = 0; j < SECRET_CHUNKS; j++) {
      const c = coefficients[j] as readonly number[]
      // Horner: f(x) = s + x (a_1 + x (a_2 + ... + x a_{t-1}))
      let acc = 0
      for (let d = c.length - 1; d >= 0; d--) acc = (mul(acc, x) + (c[d] as number)) % P
      acc = (mul(acc, x) + (chunks[j] as number)) % P
      view.setUint32(4 * j, acc, true)
    }
    return { x, share }
  })
}

/** Splits `secret` t-of-n among holders `xs` with fresh random polynomials. */
export function splitSecret(secret: Uint8Array, threshold: number, xs: readonly number[]): Share[] {
  assertHolders(xs, threshold)
  const random = randomFieldElements(SECRET_CHUNKS * (threshold - 1))
  const coefficients: number[][] = []
  for (let j = 0; j < SECRET_CHUNKS; j++) coefficients.push(random.slice(j * (threshold - 1), (j + 1) * (threshold - 1)))
  return splitWithCoefficients(secret, coefficients, xs)
}

/** λ_i = Π_{j≠i} x_j / (x_j − x_i) mod p: the Lagrange coefficients at 0 for holders `xs`. */
export function lagrangeAtZero(xs: readonly number[]): number[] {
  return xs.map((xi, i) => {
    let num = 1
    let den = 1
    for (let j = 0; j < xs.length; j++) {
      if (j === i) continue
      const xj = xs[j] as number
      num = mul(num, xj)
      den = mul(den, (xj - xi + P) % P)
    }
    return mul(num, inverse(den))
  })
}

/** Decodes a share into its eleven field elements, rejecting values outside GF(p). */
export function decodeShare(share: Uint8Array): number[] {
  if (!(share instanceof Uint8Array) || share.length !== SHARE_BYTES) {
    throw new HearthError('HEARTH_ERR_MALFORMED_MESSAGE', `a share must be ${SHARE_BYTES} bytes`)
  }
  const view = new DataView(share.buffer, share.byteOffset, share.byteLength)
  const out: number[] = []
  for (let j = 0; j < SECRET_CHUNKS; j++) {
    const v = view.getUint32(4 * j, true)
    if (v >= P) throw new HearthError('HEARTH_ERR_MALFORMED_MESSAGE', 'a share element is outside the field')
    out.push(v)
  }
  return out
}

/**
 * Reconstructs a secret from exactly `threshold` shares (the first ones given, by x). Reuses
 * Lagrange coefficients across calls with the same holders, which is the common case on the
 * server. Throws `RangeError` with fewer than `threshold` shares.
 */
export class ShamirReconstructor {
  readonly #threshold: number
  readonly #cache = new Map<string, number[]>()

  constructor(threshold: number) {
    if (!Number.isInteger(threshold) || threshold < 1) throw new RangeError(`threshold must be a positive integer, got ${threshold}`)
    this.#threshold = threshold
  }

  reconstruct(shares: readonly Share[]): Uint8Array {
    if (shares.length < this.#threshold) {
      throw new RangeError(`${shares.length} shares cannot meet threshold ${this.#threshold}`)
    }
    const used = [...shares].sort((a, b) => a.x - b.x).slice(0, this.#threshold)
    const xs = used.map((s) => s.x)
    assertHolders(xs, this.#threshold)
    const key = xs.join(',')
    let lambdas = this.#cache.get(key)
    if (lambdas === undefined) {
      lambdas = lagrangeAtZero(xs)
      if (this.#cache.size > 1024) this.#cache.clear()
      this.#cache.set(key, lambdas)
    }
    const chunks = new Array<number>(SECRET_CHUNKS).fill(0)
    used.forEach((s, i) => {
      const y = decodeShare(s.share)
      const l = (lambdas as number[])[i] as number
      for (let j = 0; j < SECRET_CHUNKS; j++) chunks[j] = ((chunks[j] as number) + mul(y[j] as number, l)) % P
    })
    return chunksToSecret(chunks)
  }
}

/** Reconstructs a secret from `threshold` of `shares` (see {@link ShamirReconstructor}). */
export function reconstructSecret(shares: readonly Share[], threshold: number): Uint8Array {
  return new ShamirReconstructor(threshold).reconstruct(shares)
}
