/**
 * Candidate encoding for `rank()`, reusing the last call's encoding when the same ids come again
 * (an app ranks the same feed again and again). Comparing 1,000 ids costs far less than hashing
 * them (each is UTF-8 encoded first, `model/hash.ts`), and handing back the very same encoding
 * lets the ranker reuse its last computation at once (`ranker.ts`). A different list fails the
 * comparison at its first differing id, so new candidates pay next to nothing for the check.
 *
 * Only for models that read ids alone (no `features`): with features the encoding also depends
 * on each call's feature values, and `encodeItems` runs every time.
 */
import { encodeItems } from '../model/item-encoding.ts'
import type { EncodedItems, ItemEncoding, ItemRef } from '../model/item-encoding.ts'

export class CandidateEncoder {
  #last: { readonly ids: readonly string[]; readonly buckets: number; readonly encoded: EncodedItems } | null = null

  /** `encodeItems(candidates, encoding)`; the previous result itself when it is the same. */
  encode(candidates: readonly ItemRef[], encoding: ItemEncoding): EncodedItems {
    if (encoding.features !== null) return encodeItems(candidates, encoding)
    const last = this.#last
    if (last !== null && last.buckets === encoding.buckets && sameIds(last.ids, candidates)) return last.encoded
    const encoded = encodeItems(candidates, encoding)
    this.#last = { ids: candidates.map((c) => c.item), buckets: encoding.buckets, encoded }
    return encoded
  }

  /** Forgets the last candidates (the user's data was deleted). */
  clear(): void {
    this.#last = null
  }
}

function sameIds(ids: readonly string[], candidates: readonly ItemRef[]): boolean {
  if (ids.length !== candidates.length) return false
  for (let i = 0; i < ids.length; i++) if (ids[i] !== (candidates[i] as ItemRef).item) return false
  return true
}
