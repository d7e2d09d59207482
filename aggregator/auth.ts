/**
 * Secret comparison without timing leaks. Both sides are hashed first: `timingSafeEqual` needs
 * equal lengths (Node docs, "crypto.timingSafeEqual"), and comparing fixed-size digests keeps
 * the length of the secret out of the timing as well.
 */
import { createHash, timingSafeEqual } from 'node:crypto'

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest()
}

/** True when `given` equals `secret`, in time independent of where they differ. */
export function secretEquals(given: string, secret: string): boolean {
  return timingSafeEqual(digest(given), digest(secret))
}

/** True when `given` equals one of `secrets`; compares against all of them, always. */
export function matchesAnySecret(given: string, secrets: readonly string[]): boolean {
  const hashed = digest(given)
  let match = false
  for (const secret of secrets) {
    // Evaluate the comparison first so that no match short-circuits the rest.
    match = timingSafeEqual(hashed, digest(secret)) || match
  }
  return match
}
