/**
 * Authenticated encryption of the shares that clients send each other through the server
 * (Bonawitz et al. CCS 2017 §3 "AE", round ShareKeys): AES-256-GCM (NIST SP 800-38D) through
 * WebCrypto, with a 96-bit IV from the CSPRNG (SP 800-38D §8.2.2) and a 128-bit tag.
 *
 * The associated data binds the ciphertext to the protocol version, the round, the group, the
 * sender and the recipient, so a ciphertext moved to another round, pair or direction fails to
 * open (`HEARTH_ERR_SECAGG_TAMPERED`), as does any flipped bit.
 *
 * Sealed layout: IV (12 bytes) ‖ ciphertext ‖ tag (16 bytes).
 */
import { HearthError } from '../errors.ts'
import { ascii, concatBytes, u32le } from './bytes.ts'
import type { RoundContext } from './kdf.ts'
import { SECAGG_LABEL } from './kdf.ts'
import type { WebCryptoKey } from './webcrypto.ts'
import { randomBytes, subtle } from './webcrypto.ts'

export const GCM_IV_BYTES = 12
export const GCM_TAG_BYTES = 16

/** AAD = label ‖ 0 ‖ "shares" ‖ 0 ‖ roundId ‖ groupId ‖ from ‖ to (uint32, little-endian). */
export function sharesAad(context: RoundContext, from: number, to: number): Uint8Array {
  return concatBytes(ascii(SECAGG_LABEL), new Uint8Array([0]), ascii('shares'), new Uint8Array([0]), u32le(context.roundId, context.groupId, from, to))
}

/** Imports a 32-byte AES-256-GCM key once, for {@link seal} and {@link open} to reuse. */
export function importShareKey(key: Uint8Array): Promise<WebCryptoKey> {
  if (key.length !== 32) throw new RangeError(`an AES-256-GCM key is 32 bytes, got ${key.length}`)
  return subtle().importKey('raw', key, { name: 'AES-GCM' }, false, ['encrypt', 'decrypt'])
}

async function asKey(key: Uint8Array | WebCryptoKey): Promise<WebCryptoKey> {
  return key instanceof Uint8Array ? importShareKey(key) : key
}

/** Encrypts `plaintext` under `key` (32 bytes, or imported) with `aad`; returns IV ‖ ciphertext ‖ tag. */
export async function seal(key: Uint8Array | WebCryptoKey, aad: Uint8Array, plaintext: Uint8Array): Promise<Uint8Array> {
  const s = subtle()
  const k = await asKey(key)
  const iv = randomBytes(GCM_IV_BYTES)
  const ct = new Uint8Array(await s.encrypt({ name: 'AES-GCM', iv, additionalData: aad, tagLength: 128 }, k, plaintext))
  return concatBytes(iv, ct)
}

/** Decrypts the output of {@link seal}; any mismatch throws `HEARTH_ERR_SECAGG_TAMPERED`. */
export async function open(key: Uint8Array | WebCryptoKey, aad: Uint8Array, sealed: Uint8Array, what: string): Promise<Uint8Array> {
  if (sealed.length < GCM_IV_BYTES + GCM_TAG_BYTES) {
    throw new HearthError('HEARTH_ERR_SECAGG_TAMPERED', `${what}: ${sealed.length} bytes is too short for AES-GCM`)
  }
  const s = subtle()
  const k = await asKey(key)
  try {
    const iv = sealed.subarray(0, GCM_IV_BYTES)
    const body = sealed.subarray(GCM_IV_BYTES)
    return new Uint8Array(await s.decrypt({ name: 'AES-GCM', iv, additionalData: aad, tagLength: 128 }, k, body))
  } catch (error) {
    throw new HearthError('HEARTH_ERR_SECAGG_TAMPERED', `${what}: AES-GCM authentication failed`, { cause: error })
  }
}
