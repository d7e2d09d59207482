/**
 * Randomness for the DP samplers: bytes from a cryptographically secure source, served as
 * unbiased integers and bits.
 *
 * By default bytes come from `globalThis.crypto.getRandomValues` (WebCrypto: browsers, workers,
 * Node >= 19); a seeded source (ChaCha20 keystream) makes tests reproducible. Never
 * `Math.random`: DP noise from a predictable generator protects nothing.
 */
import { chacha20 } from '@noble/ciphers/chacha.js'
import { sha256 } from '@noble/hashes/sha2.js'
import { utf8ToBytes } from '@noble/hashes/utils.js'
import { HearthError } from '../../errors.ts'

/** A source of uniformly random bytes. */
export interface RandomSource {
  /** Fills `bytes` with independent uniform bytes. */
  fill(bytes: Uint8Array): void
}

/** The part of WebCrypto the samplers use; typed here because `protocol` has no DOM lib. */
interface CryptoLike {
  getRandomValues(array: Uint8Array): Uint8Array
}

function webCrypto(): CryptoLike {
  const crypto = (globalThis as { crypto?: { getRandomValues?: unknown } }).crypto
  if (crypto === undefined || typeof crypto.getRandomValues !== 'function') {
    throw new HearthError('HEARTH_ERR_INTERNAL', 'globalThis.crypto.getRandomValues is not available; DP noise needs a CSPRNG (WebCrypto)')
  }
  return crypto as CryptoLike
}

/** WebCrypto's `getRandomValues` caps one call at 65,536 bytes. */
const MAX_GET_RANDOM_VALUES = 65536

/** The platform CSPRNG (`globalThis.crypto.getRandomValues`). Throws if there is none. */
export function cryptoRandomSource(): RandomSource {
  const crypto = webCrypto()
  return {
    fill(bytes: Uint8Array): void {
      for (let offset = 0; offset < bytes.length; offset += MAX_GET_RANDOM_VALUES) {
        crypto.getRandomValues(bytes.subarray(offset, Math.min(bytes.length, offset + MAX_GET_RANDOM_VALUES)))
      }
    },
  }
}

/**
 * A deterministic source for tests and reproducible simulations: the ChaCha20 keystream
 * (RFC 8439) under key SHA-256(seed), zero nonce. Same seed, same bytes, on every platform.
 * Do not use a guessable seed for real noise.
 */
export function seededRandomSource(seed: string | Uint8Array): RandomSource {
  const key = sha256(typeof seed === 'string' ? utf8ToBytes(seed) : seed)
  const nonce = new Uint8Array(12)
  let block = 0
  let pending: Uint8Array = new Uint8Array(0)
  return {
    fill(bytes: Uint8Array): void {
      let written = 0
      const fromPending = Math.min(pending.length, bytes.length)
      bytes.set(pending.subarray(0, fromPending))
      pending = pending.subarray(fromPending)
      written = fromPending
      if (written === bytes.length) return
      const blocks = Math.ceil((bytes.length - written) / 64)
      const stream = chacha20(key, nonce, new Uint8Array(blocks * 64), undefined, block)
      block += blocks
      bytes.set(stream.subarray(0, bytes.length - written), written)
      pending = stream.subarray(bytes.length - written)
    },
  }
}

const TWO_32 = 2 ** 32
const TWO_53 = 2 ** 53

/**
 * Unbiased integers and bits drawn from a `RandomSource`, read through a buffer so that the
 * source is called once per 4 KiB rather than once per draw.
 */
export class RandomBits {
  readonly #source: RandomSource
  readonly #bytes: Uint8Array
  readonly #words: Uint32Array
  #next: number

  constructor(source: RandomSource = cryptoRandomSource(), bufferWords = 1024) {
    if (!Number.isSafeInteger(bufferWords) || bufferWords < 1) throw new RangeError(`bufferWords must be a positive integer, got ${bufferWords}`)
    this.#source = source
    this.#words = new Uint32Array(bufferWords)
    this.#bytes = new Uint8Array(this.#words.buffer)
    this.#next = bufferWords
  }

  /** A uniform integer in [0, 2^32). Byte order is fixed (little-endian) for reproducibility. */
  uint32(): number {
    if (this.#next === this.#words.length) {
      this.#source.fill(this.#bytes)
      this.#next = 0
    }
    const b = this.#bytes
    const i = 4 * this.#next++
    return ((b[i] as number) | ((b[i + 1] as number) << 8) | ((b[i + 2] as number) << 16) | ((b[i + 3] as number) << 24)) >>> 0
  }

  /** A uniform integer in [0, 2^53). */
  uint53(): number {
    return (this.uint32() >>> 11) * TWO_32 + this.uint32()
  }

  /** A uniform integer in [0, n) for a safe integer 1 <= n <= 2^53, by rejection (no modulo bias). */
  below(n: number): number {
    if (n <= TWO_32) {
      const limit = TWO_32 - (TWO_32 % n)
      for (;;) {
        const r = this.uint32()
        if (r < limit) return r % n
      }
    }
    const limit = TWO_53 - (TWO_53 % n)
    for (;;) {
      const r = this.uint53()
      if (r < limit) return r % n
    }
  }

  /** A uniform bigint in [0, n) for n >= 1, by rejection on the bit length of n − 1. */
  belowBig(n: bigint): bigint {
    if (n <= BigInt(TWO_53)) return BigInt(this.below(Number(n)))
    const bits = (n - 1n).toString(2).length
    const words = Math.ceil(bits / 32)
    const topBits = bits - 32 * (words - 1)
    for (;;) {
      let r = BigInt(this.uint32() >>> (32 - topBits))
      for (let w = 1; w < words; w++) r = (r << 32n) | BigInt(this.uint32())
      if (r < n) return r
    }
  }

  /** A fair bit. */
  bit(): boolean {
    return (this.uint32() & 1) === 1
  }
}
