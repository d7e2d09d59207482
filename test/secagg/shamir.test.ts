import { describe, expect, test } from 'vitest'
import fc from 'fast-check'
import {
  lagrangeAtZero,
  reconstructSecret,
  SHAMIR_PRIME,
  ShamirReconstructor,
  splitSecret,
  splitWithCoefficients,
} from '../../protocol/secagg/shamir.ts'
import type { Share } from '../../protocol/secagg/shamir.ts'
import { expectCode, hex, toHex, vectors } from './helpers.ts'

interface ShamirVectors {
  prime: number
  cases: { label: string; secret: string; threshold: number; xs: number[]; coefficients: number[][]; shares: string[] }[]
}
const kat = vectors<ShamirVectors>('shamir.json')

/** Every k-subset of `items`. */
function subsets<T>(items: readonly T[], k: number): T[][] {
  if (k === 0) return [[]]
  if (items.length < k) return []
  const [first, ...rest] = items as [T, ...T[]]
  return [...subsets(rest, k - 1).map((s) => [first, ...s]), ...subsets(rest, k)]
}

describe('Shamir secret sharing over GF(2^24 + 43)', () => {
  test('the modulus is prime (trial division up to its square root)', () => {
    expect(SHAMIR_PRIME).toBe(kat.prime)
    for (let d = 2; d * d <= SHAMIR_PRIME; d++) expect(SHAMIR_PRIME % d).not.toBe(0)
  })

  test.each(kat.cases.map((c) => [c.label, c] as const))('known answer: %s', (_label, c) => {
    const shares = splitWithCoefficients(hex(c.secret), c.coefficients, c.xs)
    expect(shares.map((s) => toHex(s.share))).toEqual(c.shares)
    expect(shares.map((s) => s.x)).toEqual(c.xs)
  })

  test.each(kat.cases.map((c) => [c.label, c] as const))('every t-subset reconstructs, every (t-1)-subset does not: %s', (_label, c) => {
    const shares: Share[] = c.xs.map((x, i) => ({ x, share: hex(c.shares[i] as string) }))
    for (const subset of subsets(shares, c.threshold)) {
      expect(toHex(reconstructSecret(subset, c.threshold))).toBe(c.secret)
    }
    for (const subset of subsets(shares, c.threshold - 1)) {
      expect(() => reconstructSecret(subset, c.threshold)).toThrow(RangeError)
      if (c.threshold > 2) {
        // Interpolating t−1 points gives a polynomial of lower degree: not the secret.
        let wrong: string | undefined
        try {
          wrong = toHex(new ShamirReconstructor(c.threshold - 1).reconstruct(subset))
        } catch {
          wrong = undefined // out of range: certainly not the secret
        }
        expect(wrong).not.toBe(c.secret)
      }
    }
  })

  test('random secrets: any t of n shares reconstruct (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.integer({ min: 2, max: 12 }),
        fc.integer({ min: 0, max: 8 }),
        fc.integer({ min: 0, max: 2 ** 31 }),
        (secret, t, extra, pick) => {
          const xs = Array.from({ length: t + extra }, (_, i) => i + 1)
          const shares = splitSecret(secret, t, xs)
          const rotated = [...shares.slice(pick % shares.length), ...shares.slice(0, pick % shares.length)]
          expect(reconstructSecret(rotated.slice(0, t), t)).toEqual(secret)
        },
      ),
      { numRuns: 100 },
    )
  })

  test('fewer than t shares are consistent with every secret (perfect secrecy, t = 2)', () => {
    // With t = 2 one share y = s + a·x: for every candidate secret there is exactly one a.
    const shares = splitSecret(new Uint8Array(32).fill(1), 2, [5, 6])
    const lone = shares[0] as Share
    const other = new Uint8Array(32).fill(200)
    const alt = splitWithCoefficients(other, solveSlope(other, lone), [5, 6])
    expect(alt[0]?.share).toEqual(lone.share)
  })

  test('Lagrange coefficients at 0 sum to 1 (interpolating the constant 1)', () => {
    const lambdas = lagrangeAtZero([2, 7, 11, 40])
    expect(lambdas.reduce((a, b) => (a + b) % SHAMIR_PRIME, 0)).toBe(1)
  })

  test('arguments are checked, naming what is wrong', async () => {
    expect(() => splitSecret(new Uint8Array(31), 2, [1, 2])).toThrow(/32 bytes/)
    expect(() => splitSecret(new Uint8Array(32), 3, [1, 2])).toThrow(/threshold/)
    expect(() => splitSecret(new Uint8Array(32), 2, [1, 1])).toThrow(/twice/)
    expect(() => splitSecret(new Uint8Array(32), 2, [0, 1])).toThrow(/x-coordinate/)
    const shares = splitSecret(new Uint8Array(32), 2, [1, 2])
    const bad = { x: 2, share: new Uint8Array(44).fill(0xff) }
    await expectCode(() => reconstructSecret([shares[0] as Share, bad], 2), 'HEARTH_ERR_MALFORMED_MESSAGE')
  })
})

/** For t = 2 and holder x = 5: the slope a with s' + a·5 = y for each chunk (mod p). */
function solveSlope(secret: Uint8Array, share: Share): number[][] {
  const p = SHAMIR_PRIME
  const view = new DataView(share.share.buffer, share.share.byteOffset)
  const inv5 = modPow(5, p - 2, p)
  const out: number[][] = []
  for (let j = 0; j < 11; j++) {
    let s = 0
    for (let b = 3 * j; b < Math.min(3 * j + 3, 32); b++) s = s * 256 + (secret[b] as number)
    const y = view.getUint32(4 * j, true)
    out.push([Number((BigInt((y - s + p) % p) * BigInt(inv5)) % BigInt(p))])
  }
  return out
}

function modPow(b: number, e: number, m: number): number {
  let r = 1n
  let base = BigInt(b)
  let exp = BigInt(e)
  const mod = BigInt(m)
  while (exp > 0n) {
    if (exp & 1n) r = (r * base) % mod
    base = (base * base) % mod
    exp >>= 1n
  }
  return Number(r)
}
