/**
 * From items (id and optional features) to the arrays a model's item side reads:
 *
 * - `buckets[r]`: the hashed id, h(id) = FNV-1a-32(id) mod B (`hash.ts`);
 * - `tokens[r·K + k]`, `tokenWeights[r·K + k]`: up to K feature tokens of the item, each hashed
 *   into the spec's feature buckets, weighted 1/(number of tokens) so that the model's sum is
 *   their mean; unused slots have token 0 and weight 0. K is the most tokens any item of the call
 *   has (at most `tokensPerItem`): an empty slot adds exactly 0 to x(i), so a narrower table
 *   gives the same scores and gradients, and the gather of feature rows, most of a training
 *   step's time, shrinks with it (MovieLens movies have at most 6 genres, not 16);
 * - `numeric[r·N + j]`: the spec's j-th numeric feature, 0 when absent.
 *
 * Tokens, the "hashing trick" for features (Weinberger et al., ICML 2009): a category or flag
 * `name: value` is the token `name␟value`; each tag of a list is one such token; a feature the
 * spec lists as text is split into lower-case words (Unicode letters and digits), each the token
 * `name␟word`. Tokens are taken in feature-name order, so the result does not depend on the
 * order the app wrote the keys in.
 *
 * Withheld features (sensitive, without consent: `protocol/personal-data.ts`) are skipped here,
 * so their input is exactly zero: no token, no weight, numeric 0. The model never reads them.
 */
import type { ItemFeatures } from '../../protocol/features.ts'
import type { FeatureOptions } from '../../protocol/model-spec.ts'
import { fnv1a32, itemBucket } from './hash.ts'

/** Most feature tokens one item contributes (K above). */
export const DEFAULT_TOKENS_PER_ITEM = 16

/** An item as the app names it: an id, and features if it has any. */
export interface ItemRef {
  readonly item: string
  readonly features?: ItemFeatures
}

/** How a model reads items: its id buckets and, if it has them, its feature inputs. */
export interface ItemEncoding {
  readonly buckets: number
  readonly features: FeatureOptions | null
  /** Most token slots per item (K of a call is the most any of its items uses, up to this). */
  readonly tokensPerItem: number
  /** Features never read (sensitive ones without consent). */
  readonly withheld: ReadonlySet<string>
}

/** Encoded items: n rows (see the module comment). Feature arrays are empty without features. */
export interface EncodedItems {
  readonly count: number
  readonly buckets: Int32Array
  readonly tokens: Int32Array
  readonly tokenWeights: Float32Array
  readonly numeric: Float32Array
}

const SEPARATOR = '\u241f'
const WORD = /[\p{L}\p{N}]+/gu

/** The encoding of a spec's item side. */
export function itemEncoding(buckets: number, features: FeatureOptions | null | undefined, withheld: ReadonlySet<string> = new Set()): ItemEncoding {
  return { buckets, features: features ?? null, tokensPerItem: features === undefined || features === null ? 0 : DEFAULT_TOKENS_PER_ITEM, withheld }
}

/** The same encoding with another set of withheld features. */
export function withWithheld(encoding: ItemEncoding, withheld: ReadonlySet<string>): ItemEncoding {
  return { ...encoding, withheld }
}

/** Tokens of one item's features, in feature-name order, at most `limit`. */
export function featureTokens(features: ItemFeatures, options: FeatureOptions, withheld: ReadonlySet<string>, limit: number): string[] {
  const numeric = new Set(options.numeric ?? [])
  const text = new Set(options.text ?? [])
  const tokens: string[] = []
  for (const name of Object.keys(features).sort()) {
    if (tokens.length >= limit) break
    if (withheld.has(name) || numeric.has(name)) continue
    const value = features[name]
    if (value === undefined || typeof value === 'number') continue
    if (typeof value === 'boolean') tokens.push(`${name}${SEPARATOR}${value}`)
    else if (typeof value === 'string') {
      if (text.has(name)) {
        const words = new Set(value.toLowerCase().match(WORD) ?? [])
        for (const word of words) tokens.push(`${name}${SEPARATOR}${word}`)
      } else tokens.push(`${name}${SEPARATOR}${value}`)
    } else for (const tag of new Set(value)) tokens.push(`${name}${SEPARATOR}${tag}`)
  }
  return tokens.slice(0, limit)
}

/** Encodes `items` (see the module comment). */
export function encodeItems(items: readonly ItemRef[], encoding: ItemEncoding): EncodedItems {
  const n = items.length
  const buckets = new Int32Array(n)
  const features = encoding.features
  const own: (string[] | null)[] = items.map((ref) => (features === null || ref.features === undefined ? null : featureTokens(ref.features, features, encoding.withheld, encoding.tokensPerItem)))
  const K = own.reduce((most, tokens) => Math.max(most, tokens?.length ?? 0), 0)
  const numericNames = features?.numeric ?? []
  const N = numericNames.length
  const tokens = new Int32Array(n * K)
  const tokenWeights = new Float32Array(n * K)
  const numeric = new Float32Array(n * N)
  for (let r = 0; r < n; r++) {
    const ref = items[r] as ItemRef
    buckets[r] = itemBucket(ref.item, encoding.buckets)
    const mine = own[r]
    if (features === null || ref.features === undefined || mine === null || mine === undefined) continue
    for (let k = 0; k < mine.length; k++) {
      tokens[r * K + k] = fnv1a32(mine[k] as string) % features.buckets
      tokenWeights[r * K + k] = 1 / mine.length
    }
    for (let j = 0; j < N; j++) {
      const name = numericNames[j] as string
      const value = ref.features[name]
      if (typeof value === 'number' && !encoding.withheld.has(name)) numeric[r * N + j] = value
    }
  }
  return { count: n, buckets, tokens, tokenWeights, numeric }
}

/** The rows `rows` of `items`, in that order (rows may repeat). */
export function selectRows(items: EncodedItems, rows: ArrayLike<number>): EncodedItems {
  const n = rows.length
  const K = items.count === 0 ? 0 : items.tokens.length / items.count
  const N = items.count === 0 ? 0 : items.numeric.length / items.count
  const out = {
    count: n,
    buckets: new Int32Array(n),
    tokens: new Int32Array(n * K),
    tokenWeights: new Float32Array(n * K),
    numeric: new Float32Array(n * N),
  }
  for (let i = 0; i < n; i++) {
    const r = rows[i] as number
    out.buckets[i] = items.buckets[r] as number
    if (K > 0) {
      out.tokens.set(items.tokens.subarray(r * K, r * K + K), i * K)
      out.tokenWeights.set(items.tokenWeights.subarray(r * K, r * K + K), i * K)
    }
    if (N > 0) out.numeric.set(items.numeric.subarray(r * N, r * N + N), i * N)
  }
  return out
}
