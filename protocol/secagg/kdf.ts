/**
 * Key derivation with HKDF-SHA256 (RFC 5869 §2.2 Extract and §2.3 Expand, via `@noble/hashes`).
 *
 * Every 32-byte key or seed used in a round is derived with an `info` that names its purpose,
 * the round and group, and the clients it belongs to (RFC 5869 §3.2: "info ... to bind the
 * derived key material to application- and context-specific information"). Keys of one round,
 * group or purpose are therefore independent of every other, and a message or mask from one
 * round cannot be replayed into another.
 */
import { hkdf } from '@noble/hashes/hkdf.js'
import { sha256 } from '@noble/hashes/sha2.js'
import { ascii, concatBytes, u32le } from './bytes.ts'

/** Version label bound into every derivation and every authenticated message. */
export const SECAGG_LABEL = 'hearth/secagg/v1'

/** Purposes of derived keys. */
export const KeyPurpose = {
  /** AES-256-GCM key for the shares client u sends client v through the server. */
  ShareEncryption: 'share-encryption',
  /** PRG seed of the pairwise mask of u and v. */
  PairwiseMask: 'pairwise-mask',
  /** PRG seed of u's self mask, from its secret b_u. */
  SelfMask: 'self-mask',
} as const
export type KeyPurpose = (typeof KeyPurpose)[keyof typeof KeyPurpose]

/** The round and group a derivation belongs to. */
export interface RoundContext {
  readonly roundId: number
  readonly groupId: number
}

/**
 * HKDF-SHA256(ikm, salt = empty, info = label ‖ 0 ‖ purpose ‖ 0 ‖ roundId ‖ groupId ‖ ids, L = 32).
 * `ids` are the client indices concerned: for pairwise keys the smaller index first, so both
 * ends derive the same key.
 */
export function deriveKey(ikm: Uint8Array, purpose: KeyPurpose, context: RoundContext, ids: readonly number[]): Uint8Array {
  const info = concatBytes(
    ascii(SECAGG_LABEL),
    new Uint8Array([0]),
    ascii(purpose),
    new Uint8Array([0]),
    u32le(context.roundId, context.groupId, ...ids),
  )
  return hkdf(sha256, ikm, undefined, info, 32)
}

/** The key for the pair {u, v} (order-independent). */
export function derivePairKey(ikm: Uint8Array, purpose: KeyPurpose, context: RoundContext, u: number, v: number): Uint8Array {
  return deriveKey(ikm, purpose, context, u < v ? [u, v] : [v, u])
}
