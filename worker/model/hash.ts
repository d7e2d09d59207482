/**
 * Item hashing: every device must put the same item id in the same bucket, or their updates to
 * `item_embedding` and `item_bias` would not add up. The catalog itself never leaves the device.
 *
 *   h(id) = FNV-1a-32(UTF-8(id)) mod buckets
 *
 * FNV-1a, 32-bit (Fowler, Noll, Vo; draft-eastlake-fnv-21 §2): start from the offset basis
 * 2166136261, then for each byte `hash ^= byte; hash *= 16777619 (mod 2^32)`. The id is hashed
 * as UTF-8 so the result does not depend on the JavaScript string's UTF-16 layout. The modulo
 * bias is below buckets / 2^32 (< 0.1% for the 2^22 buckets a spec allows) and ignored.
 *
 * Distinct ids may share a bucket (the "hashing trick", Weinberger et al. 2009): such items
 * share one embedding row. Size `buckets` to the catalog to keep collisions rare.
 */

const FNV_OFFSET_BASIS = 0x811c9dc5
const FNV_PRIME = 0x01000193
const utf8 = new TextEncoder()

/** FNV-1a 32-bit hash of the UTF-8 bytes of `text`, as an unsigned 32-bit integer. */
export function fnv1a32(text: string): number {
  let hash = FNV_OFFSET_BASIS
  for (const byte of utf8.encode(text)) {
    hash ^= byte
    // Math.imul keeps the product exact modulo 2^32 (a float multiply would lose low bits).
    hash = Math.imul(hash, FNV_PRIME)
  }
  return hash >>> 0
}

/** The bucket of `item` among `buckets`: `fnv1a32(item) mod buckets`. */
export function itemBucket(item: string, buckets: number): number {
  return fnv1a32(item) % buckets
}

/** Buckets of many items, as the int32 indices `tf.gather` takes. */
export function itemBuckets(items: readonly string[], buckets: number): Int32Array {
  const out = new Int32Array(items.length)
  for (let i = 0; i < items.length; i++) out[i] = itemBucket(items[i] as string, buckets)
  return out
}
