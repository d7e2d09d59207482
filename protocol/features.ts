/**
 * Item features an app may attach to an event or a ranking candidate, besides the item id:
 * categories (`genre: 'jazz'`), tags (`tags: ['live', '1970s']`), free text (`title: '...'`,
 * for the features a model spec lists as text) and numbers (`price: 0.4`, for the features it
 * lists as numeric). How the model reads them is in `worker/model/item-encoding.ts`.
 *
 * Features may be sensitive (an article's `topic: 'health'` says something about whoever reads
 * it). The app names those and the consent category each belongs to; the device never reads
 * them (nor stores them) unless the user granted that category (see `protocol/personal-data.ts`).
 */
import { HearthError } from './errors.ts'

/** One feature value: a category or text (string), a number, a flag, or a list of tags. */
export type FeatureValue = string | number | boolean | readonly string[]

/** Features of one item, keyed by feature name. */
export type ItemFeatures = Readonly<Record<string, FeatureValue>>

/** Most features one item may carry. */
export const MAX_FEATURES = 32
/** Longest feature name. */
export const MAX_FEATURE_NAME_LENGTH = 64
/** Longest string value (text included). */
export const MAX_FEATURE_STRING_LENGTH = 1024
/** Most tags in one list. */
export const MAX_FEATURE_TAGS = 64

const FEATURE_NAME = /^[\w.:-]+$/

function invalid(detail: string): never {
  throw new HearthError('HEARTH_ERR_INVALID_ARGUMENT', detail)
}

/** Checks a feature name (letters, digits, `_ . : -`, at most 64 characters). */
export function assertFeatureName(name: unknown, where: string): asserts name is string {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_FEATURE_NAME_LENGTH || !FEATURE_NAME.test(name)) {
    invalid(`${where} must be a feature name of 1 to ${MAX_FEATURE_NAME_LENGTH} letters, digits, _ . : or -, got ${JSON.stringify(name)}`)
  }
}

function toFeatureValue(value: unknown, where: string): FeatureValue {
  if (typeof value === 'boolean') return value
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) invalid(`${where} must be a finite number`)
    return value
  }
  if (typeof value === 'string') {
    if (value.length > MAX_FEATURE_STRING_LENGTH) invalid(`${where} must be at most ${MAX_FEATURE_STRING_LENGTH} characters`)
    return value
  }
  if (Array.isArray(value)) {
    if (value.length > MAX_FEATURE_TAGS) invalid(`${where} may hold at most ${MAX_FEATURE_TAGS} tags`)
    return value.map((tag: unknown, i) => {
      if (typeof tag !== 'string' || tag.length === 0 || tag.length > MAX_FEATURE_STRING_LENGTH) {
        invalid(`${where}[${i}] must be a string of 1 to ${MAX_FEATURE_STRING_LENGTH} characters`)
      }
      return tag
    })
  }
  return invalid(`${where} must be a string, a finite number, a boolean or a list of strings`)
}

/**
 * Validates item features and returns a plain copy. Throws `HEARTH_ERR_INVALID_ARGUMENT` naming
 * the offending field (`where` is its path, e.g. `event.features`).
 */
export function toItemFeatures(value: unknown, where: string): ItemFeatures {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) invalid(`${where} must be a plain object of feature values`)
  const entries = Object.entries(value)
  if (entries.length > MAX_FEATURES) invalid(`${where} may hold at most ${MAX_FEATURES} features`)
  const out: Record<string, FeatureValue> = {}
  for (const [name, feature] of entries) {
    assertFeatureName(name, `${where} key`)
    out[name] = toFeatureValue(feature, `${where}.${name}`)
  }
  return out
}

/** `features` without the named ones; the same object when none of them is present. */
export function withoutFeatures(features: ItemFeatures, names: ReadonlySet<string>): ItemFeatures {
  if (names.size === 0 || !Object.keys(features).some((name) => names.has(name))) return features
  return Object.fromEntries(Object.entries(features).filter(([name]) => !names.has(name)))
}
