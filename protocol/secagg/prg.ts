/**
 * Mask expansion: a 256-bit seed becomes m pseudorandom words of Z_{2^32} (Bonawitz et al. CCS
 * 2017 §4, "PRG"). Only cryptographic PRGs: a non-cryptographic generator here would let the
 * server predict masks (the bug Flower fixed in flwrlabs/flower#7522).
 *
 * - `aes-256-ctr` (default): the keystream of AES-256 in counter mode (NIST SP 800-38A §6.5)
 *   with the seed as key, an all-zero initial counter block and the standard incrementing
 *   function on the whole 128-bit block (SP 800-38A §B.1, m = 128), through WebCrypto, which runs
 *   on AES-NI in browsers and Node. Word i is bytes 4i..4i+3 of the keystream, little-endian.
 * - `chacha20`: the RFC 8439 §2.4 keystream with the seed as key, an all-zero 96-bit nonce and
 *   initial block counter 0, via `@noble/ciphers` (pure JS, synchronous, slower).
 *
 * A fixed counter / nonce is safe because each seed keys exactly one keystream: seeds are derived
 * per round, per group, per purpose and per pair of clients with HKDF (`kdf.ts`).
 */
import { chacha20 } from '@noble/ciphers/chacha.js'
import { LITTLE_ENDIAN } from './bytes.ts'
import { subtle } from './webcrypto.ts'

/** The PRG used to expand seeds; both ends of a round must use the same. */
export const PrgAlgorithm = {
  AesCtr: 'aes-256-ctr',
  ChaCha20: 'chacha20',
} as const
export type PrgAlgorithm = (typeof PrgAlgorithm)[keyof typeof PrgAlgorithm]

/** Length in bytes of every seed. */
export const SEED_BYTES = 32

let zeros = new Uint8Array(0)
function zeroBytes(length: number): Uint8Array {
  // A shared all-zero plaintext: AES-CTR and ChaCha20 of zeros is the bare keystream. Never written.
  if (zeros.length < length) zeros = new Uint8Array(Math.max(length, 2 * zeros.length))
  return zeros.subarray(0, length)
}

/** Expands `seed` into `words` pseudorandom uint32 words with `algorithm`. */
export async function expandSeed(seed: Uint8Array, words: number, algorithm: PrgAlgorithm): Promise<Uint32Array> {
  if (!(seed instanceof Uint8Array) || seed.length !== SEED_BYTES) {
    throw new RangeError(`seed must be ${SEED_BYTES} bytes, got ${seed instanceof Uint8Array ? seed.length : typeof seed}`)
  }
  if (!Number.isInteger(words) || words < 0) throw new RangeError(`words must be a non-negative integer, got ${words}`)
  let stream: Uint8Array
  if (algorithm === PrgAlgorithm.AesCtr) {
    const s = subtle()
    const key = await s.importKey('raw', seed, { name: 'AES-CTR' }, false, ['encrypt'])
    const counter = new Uint8Array(16)
    stream = new Uint8Array(await s.encrypt({ name: 'AES-CTR', counter, length: 128 }, key, zeroBytes(4 * words)))
  } else if (algorithm === PrgAlgorithm.ChaCha20) {
    stream = chacha20(seed, new Uint8Array(12), zeroBytes(4 * words))
  } else {
    throw new RangeError(`unknown PRG ${String(algorithm)}`)
  }
  return toWords(stream, words)
}

function toWords(stream: Uint8Array, words: number): Uint32Array {
  if (LITTLE_ENDIAN && stream.byteOffset % 4 === 0) return new Uint32Array(stream.buffer, stream.byteOffset, words)
  const view = new DataView(stream.buffer, stream.byteOffset, stream.byteLength)
  const out = new Uint32Array(words)
  for (let i = 0; i < words; i++) out[i] = view.getUint32(4 * i, true)
  return out
}

/** target ← target + mask (mod 2^32; a Uint32Array store wraps, ECMA-262 ToUint32). */
export function addInto(target: Uint32Array, mask: Uint32Array): void {
  const n = target.length
  for (let i = 0; i < n; i++) target[i] = (target[i] as number) + (mask[i] as number)
}

/** target ← target − mask (mod 2^32). */
export function subtractInto(target: Uint32Array, mask: Uint32Array): void {
  const n = target.length
  for (let i = 0; i < n; i++) target[i] = (target[i] as number) - (mask[i] as number)
}

/** One mask to apply: its seed and whether it is added (+1) or subtracted (−1). */
export interface MaskJob {
  readonly seed: Uint8Array
  readonly sign: 1 | -1
}

/**
 * Adds or subtracts the expansion of every job's seed into `target` (mod 2^32). Up to
 * `concurrency` expansions are in flight at once, so WebCrypto's AES (which runs off the main
 * thread in Node and in browsers) overlaps with the additions here.
 */
export async function applyMasks(
  target: Uint32Array,
  jobs: Iterable<MaskJob> | AsyncIterable<MaskJob>,
  algorithm: PrgAlgorithm,
  concurrency = 4,
): Promise<void> {
  const words = target.length
  const pending: Promise<{ mask: Uint32Array; sign: 1 | -1 }>[] = []
  const drain = async (): Promise<void> => {
    const first = pending.shift()
    if (first === undefined) return
    const { mask, sign } = await first
    if (sign === 1) addInto(target, mask)
    else subtractInto(target, mask)
  }
  for await (const job of jobs) {
    const expansion = expandSeed(job.seed, words, algorithm).then((mask) => ({ mask, sign: job.sign }))
    expansion.catch(() => undefined) // rejections surface when drained, not as unhandled
    pending.push(expansion)
    if (pending.length >= concurrency) await drain()
  }
  while (pending.length > 0) await drain()
}
