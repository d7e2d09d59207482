import { describe, expect, test } from 'vitest'
import { fnv1a32, itemBucket, itemBuckets } from '../../worker/model/hash.ts'
import vectors from './vectors/fnv1a32.json' with { type: 'json' }

describe('item hashing', () => {
  test.each(vectors.vectors)('FNV-1a 32 of $input is $hash', ({ input, hash }) => {
    expect(fnv1a32(input).toString(16).padStart(8, '0')).toBe(hash)
  })

  test('buckets are the hash modulo the bucket count, in range, for many ids', () => {
    const ids = Array.from({ length: 2000 }, (_, i) => `item-${i}`)
    const buckets = itemBuckets(ids, 97)
    ids.forEach((id, i) => {
      expect(buckets[i]).toBe(fnv1a32(id) % 97)
      expect(itemBucket(id, 97)).toBe(buckets[i])
    })
    // A sanity check of spread: every one of 97 buckets is hit by 2000 ids.
    expect(new Set(buckets).size).toBe(97)
  })
})
