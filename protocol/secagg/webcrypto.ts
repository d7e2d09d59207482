/**
 * A typed accessor for the small part of WebCrypto that secure aggregation uses.
 *
 * `protocol/` compiles without the DOM lib and without Node types, so this module declares just
 * the subset it calls (W3C Web Cryptography API: `SubtleCrypto.importKey`, `encrypt`, `decrypt`,
 * `deriveBits`; `Crypto.getRandomValues`). The same global exists in pages, workers and
 * Node >= 19 (`globalThis.crypto`); when it is missing every call fails with a clear error.
 */
import { HearthError } from '../errors.ts'

/** An opaque WebCrypto key handle. */
export interface WebCryptoKey {
  readonly type: string
  readonly extractable: boolean
}

/** AES-CTR parameters (WebCrypto §27.3 AesCtrParams). */
export interface AesCtrParams {
  readonly name: 'AES-CTR'
  readonly counter: Uint8Array
  readonly length: number
}

/** AES-GCM parameters (WebCrypto §28.3 AesGcmParams). */
export interface AesGcmParams {
  readonly name: 'AES-GCM'
  readonly iv: Uint8Array
  readonly additionalData?: Uint8Array
  readonly tagLength?: number
}

/** ECDH-style key derivation parameters (Secure Curves in WebCrypto: X25519). */
export interface X25519DeriveParams {
  readonly name: 'X25519'
  readonly public: WebCryptoKey
}

/** The subset of `SubtleCrypto` used here. */
export interface SubtleSubset {
  importKey(
    format: 'raw' | 'pkcs8',
    keyData: Uint8Array,
    algorithm: { readonly name: 'AES-CTR' | 'AES-GCM' | 'X25519' },
    extractable: boolean,
    keyUsages: readonly ('encrypt' | 'decrypt' | 'deriveBits')[],
  ): Promise<WebCryptoKey>
  encrypt(algorithm: AesCtrParams | AesGcmParams, key: WebCryptoKey, data: Uint8Array): Promise<ArrayBuffer>
  decrypt(algorithm: AesGcmParams, key: WebCryptoKey, data: Uint8Array): Promise<ArrayBuffer>
  deriveBits(algorithm: X25519DeriveParams, baseKey: WebCryptoKey, length: number): Promise<ArrayBuffer>
  generateKey(
    algorithm: { readonly name: 'X25519' },
    extractable: boolean,
    keyUsages: readonly 'deriveBits'[],
  ): Promise<{ readonly publicKey: WebCryptoKey; readonly privateKey: WebCryptoKey }>
  exportKey(format: 'raw' | 'pkcs8', key: WebCryptoKey): Promise<ArrayBuffer>
}

interface CryptoSubset {
  readonly subtle?: SubtleSubset
  getRandomValues?<T extends Uint8Array | Uint32Array>(array: T): T
}

function globalCrypto(): CryptoSubset | undefined {
  return (globalThis as { crypto?: CryptoSubset }).crypto
}

/** `crypto.subtle`, or a `HEARTH_ERR_INTERNAL` error naming what is missing. */
export function subtle(): SubtleSubset {
  const s = globalCrypto()?.subtle
  if (s === undefined) {
    throw new HearthError(
      'HEARTH_ERR_INTERNAL',
      'WebCrypto (globalThis.crypto.subtle) is not available: secure aggregation needs a secure context (HTTPS) or Node >= 20',
    )
  }
  return s
}

// getRandomValues fills at most 65,536 bytes per call (WebCrypto §10.1.1, QuotaExceededError).
const MAX_RANDOM_BYTES = 65_536

/** `length` bytes from the platform CSPRNG (`crypto.getRandomValues`). */
export function randomBytes(length: number): Uint8Array {
  const c = globalCrypto()
  if (c?.getRandomValues === undefined) {
    throw new HearthError('HEARTH_ERR_INTERNAL', 'crypto.getRandomValues is not available')
  }
  const out = new Uint8Array(length)
  for (let offset = 0; offset < length; offset += MAX_RANDOM_BYTES) {
    c.getRandomValues(out.subarray(offset, Math.min(length, offset + MAX_RANDOM_BYTES)))
  }
  return out
}

/** `length` uniformly random uint32 words from the platform CSPRNG. */
export function randomWords(length: number): Uint32Array {
  const bytes = randomBytes(4 * length)
  return new Uint32Array(bytes.buffer, bytes.byteOffset, length)
}
