/**
 * Signatures for the optional ConsistencyCheck stage (Bonawitz et al. CCS 2017 §4, Figure 4,
 * round 3 "ConsistencyCheck", and §6.3 on the active adversary): each client signs the list U3
 * of survivors it was shown, and reveals shares only after t of its peers have signed the same
 * list, so a server cannot tell different clients different stories about who dropped out.
 *
 * Ed25519 (RFC 8032 §5.1) via `@noble/curves`, with per-round keys advertised in AdvertiseKeys.
 * The check is only as strong as the binding of those keys to real clients: Hearth has no PKI
 * for devices, so a server that also fabricates clients (Sybils) is outside what it prevents.
 */
import { ed25519 } from '@noble/curves/ed25519.js'
import { ascii, concatBytes, u32le } from './bytes.ts'
import type { RoundContext } from './kdf.ts'
import { SECAGG_LABEL } from './kdf.ts'
import { randomBytes } from './webcrypto.ts'

export const SIGNATURE_BYTES = 64
export const SIGNING_KEY_BYTES = 32

/** An Ed25519 key pair for one round. */
export interface SigningKeyPair {
  readonly secretKey: Uint8Array
  readonly publicKey: Uint8Array
}

/** A fresh Ed25519 key pair (RFC 8032 §5.1.5: the secret key is 32 random bytes). */
export function generateSigningKeyPair(): SigningKeyPair {
  const secretKey = randomBytes(SIGNING_KEY_BYTES)
  return { secretKey, publicKey: ed25519.getPublicKey(secretKey) }
}

/** The signed statement: label ‖ 0 ‖ "survivors" ‖ 0 ‖ roundId ‖ groupId ‖ |U3| ‖ U3 ascending. */
export function survivorsStatement(context: RoundContext, survivors: readonly number[]): Uint8Array {
  const sorted = [...survivors].sort((a, b) => a - b)
  return concatBytes(
    ascii(SECAGG_LABEL),
    new Uint8Array([0]),
    ascii('survivors'),
    new Uint8Array([0]),
    u32le(context.roundId, context.groupId, sorted.length, ...sorted),
  )
}

/** Signs the survivors statement. */
export function signSurvivors(secretKey: Uint8Array, context: RoundContext, survivors: readonly number[]): Uint8Array {
  return ed25519.sign(survivorsStatement(context, survivors), secretKey)
}

/** Verifies a survivors signature; false (never throws) for anything invalid. */
export function verifySurvivors(publicKey: Uint8Array, signature: Uint8Array, context: RoundContext, survivors: readonly number[]): boolean {
  try {
    return ed25519.verify(signature, survivorsStatement(context, survivors), publicKey)
  } catch {
    return false
  }
}
