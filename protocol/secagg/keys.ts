/**
 * Key agreement with X25519 (RFC 7748 §5 and §6.1), the KA of Bonawitz et al. CCS 2017 §3.
 *
 * Secret keys are 32 random bytes (RFC 7748 §6.1: "generates 32 random bytes"), kept raw because
 * the masking secret key is Shamir-shared and the server reconstructs it when its owner drops.
 * Public keys come from `@noble/curves`. Agreement runs through WebCrypto's native X25519
 * where the platform has it (Node >= 20, recent browsers) and `@noble/curves` otherwise; both
 * compute the same RFC 7748 function, and both are tested against its vectors.
 */
import { x25519 } from '@noble/curves/ed25519.js'
import { HearthError } from '../errors.ts'
import { concatBytes } from './bytes.ts'
import type { WebCryptoKey } from './webcrypto.ts'
import { randomBytes, subtle } from './webcrypto.ts'

export const X25519_KEY_BYTES = 32

/** An X25519 key pair. */
export interface KeyPair {
  readonly secretKey: Uint8Array
  readonly publicKey: Uint8Array
  /** The secret key already imported into WebCrypto, when it was generated there. */
  readonly webKey?: WebCryptoKey
}

/**
 * A fresh key pair from the platform CSPRNG: WebCrypto's native X25519 key generation where
 * available (the raw secret key is the last 32 bytes of its RFC 8410 PKCS#8 export), else
 * 32 random bytes and `@noble/curves` for the public key.
 */
export async function generateKeyPair(backend: X25519Backend | 'auto' = 'auto'): Promise<KeyPair> {
  const chosen = backend === 'auto' ? await detectX25519Backend() : backend
  if (chosen === 'webcrypto') {
    const s = subtle()
    const pair = await s.generateKey({ name: 'X25519' }, true, ['deriveBits'])
    const pkcs8 = new Uint8Array(await s.exportKey('pkcs8', pair.privateKey))
    const publicKey = new Uint8Array(await s.exportKey('raw', pair.publicKey))
    if (pkcs8.length === PKCS8_X25519_PREFIX.length + X25519_KEY_BYTES && PKCS8_X25519_PREFIX.every((b, i) => pkcs8[i] === b) && publicKey.length === X25519_KEY_BYTES) {
      return { secretKey: pkcs8.slice(PKCS8_X25519_PREFIX.length), publicKey, webKey: pair.privateKey }
    }
  }
  const secretKey = randomBytes(X25519_KEY_BYTES)
  return { secretKey, publicKey: publicKeyOf(secretKey) }
}

/** X25519(k, 9): the public key of `secretKey` (RFC 7748 §6.1). */
export function publicKeyOf(secretKey: Uint8Array): Uint8Array {
  assertKey(secretKey, 'secretKey')
  return x25519.getPublicKey(secretKey)
}

/** Which implementation computes X25519. */
export type X25519Backend = 'webcrypto' | 'noble'

// RFC 8410 §7 / §10.3: PKCS#8 OneAsymmetricKey for id-X25519 (1.3.101.110) wraps the raw key.
const PKCS8_X25519_PREFIX = new Uint8Array([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20])

let detected: Promise<X25519Backend> | undefined

/** The backend `'auto'` picks: WebCrypto when it computes RFC 7748 §6.1's vector, else noble. */
export function detectX25519Backend(): Promise<X25519Backend> {
  detected ??= (async (): Promise<X25519Backend> => {
    try {
      // RFC 7748 §6.1: Alice's private key, Bob's public key and their shared secret K.
      const alice = hex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a')
      const bob = hex('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f')
      const expected = hex('4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742')
      const agreement = await X25519Agreement.create(alice, 'webcrypto')
      const k = await agreement.agree(bob)
      return k.every((b, i) => b === expected[i]) ? 'webcrypto' : 'noble'
    } catch {
      return 'noble'
    }
  })()
  return detected
}

/** Agreement from one secret key with many peers; imports the key into WebCrypto once. */
export class X25519Agreement {
  readonly #secretKey: Uint8Array
  readonly #webKey: WebCryptoKey | undefined

  private constructor(secretKey: Uint8Array, webKey: WebCryptoKey | undefined) {
    this.#secretKey = secretKey
    this.#webKey = webKey
  }

  /** Prepares agreement for `secretKey` with `backend` ('auto' detects once per process). */
  static async create(secretKey: Uint8Array, backend: X25519Backend | 'auto' = 'auto', imported?: WebCryptoKey): Promise<X25519Agreement> {
    assertKey(secretKey, 'secretKey')
    const chosen = backend === 'auto' ? await detectX25519Backend() : backend
    if (chosen === 'noble') return new X25519Agreement(secretKey, undefined)
    if (imported !== undefined) return new X25519Agreement(secretKey, imported)
    const webKey = await subtle().importKey('pkcs8', concatBytes(PKCS8_X25519_PREFIX, secretKey), { name: 'X25519' }, false, ['deriveBits'])
    return new X25519Agreement(secretKey, webKey)
  }

  /**
   * The shared secret X25519(secretKey, peerPublicKey). Throws `HEARTH_ERR_SECAGG_TAMPERED` for
   * a peer key that yields the all-zero value (a low-order point, RFC 7748 §6.1).
   */
  async agree(peerPublicKey: Uint8Array): Promise<Uint8Array> {
    assertKey(peerPublicKey, 'peerPublicKey')
    let shared: Uint8Array
    try {
      if (this.#webKey === undefined) {
        shared = x25519.getSharedSecret(this.#secretKey, peerPublicKey)
      } else {
        const s = subtle()
        const peer = await s.importKey('raw', peerPublicKey, { name: 'X25519' }, true, [])
        shared = new Uint8Array(await s.deriveBits({ name: 'X25519', public: peer }, this.#webKey, 256))
      }
    } catch (error) {
      throw new HearthError('HEARTH_ERR_SECAGG_TAMPERED', 'X25519 rejected the peer public key', { cause: error })
    }
    let acc = 0
    for (const b of shared) acc |= b
    if (acc === 0) throw new HearthError('HEARTH_ERR_SECAGG_TAMPERED', 'X25519 produced the all-zero value (low-order peer key)')
    return shared
  }
}

function assertKey(key: Uint8Array, name: string): void {
  if (!(key instanceof Uint8Array)) throw new TypeError(`${name} must be a Uint8Array`)
  if (key.length !== X25519_KEY_BYTES) throw new RangeError(`${name} must be ${X25519_KEY_BYTES} bytes, got ${key.length}`)
}

function hex(text: string): Uint8Array {
  const out = new Uint8Array(text.length / 2)
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16)
  return out
}
