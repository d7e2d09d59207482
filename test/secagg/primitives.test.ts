import { createCipheriv, createHash } from 'node:crypto'
import { describe, expect, test } from 'vitest'
import { chacha20 } from '@noble/ciphers/chacha.js'
import { ctr } from '@noble/ciphers/aes.js'
import { hkdf } from '@noble/hashes/hkdf.js'
import { sha256 } from '@noble/hashes/sha2.js'
import { open, seal, sharesAad } from '../../protocol/secagg/aead.ts'
import { fromBase64, toBase64 } from '../../protocol/secagg/bytes.ts'
import { derivePairKey, deriveKey, KeyPurpose } from '../../protocol/secagg/kdf.ts'
import { detectX25519Backend, publicKeyOf, X25519Agreement } from '../../protocol/secagg/keys.ts'
import { addInto, applyMasks, expandSeed, PrgAlgorithm, subtractInto } from '../../protocol/secagg/prg.ts'
import { subtle } from '../../protocol/secagg/webcrypto.ts'
import { expectCode, hex, toHex, vectors } from './helpers.ts'

interface Published {
  aesCtr: { key: string; counter: string; plaintext: string; ciphertext: string }[]
  chacha20: { key: string; nonce: string; counter: number; plaintext?: string; plaintextAscii?: string; ciphertext: string }[]
  x25519: { scalar: string; u: string; output: string }[]
  x25519DiffieHellman: { alicePrivate: string; alicePublic: string; bobPrivate: string; bobPublic: string; shared: string }
  hkdfSha256: { ikm: string; salt: string; info: string; length: number; okm: string }[]
}
interface PrgVectors {
  cases: { algorithm: PrgAlgorithm; seed: string; words: number; sha256: string; keystream?: string }[]
}

const published = vectors<Published>('published.json')
const prg = vectors<PrgVectors>('prg.json')

function wordsToBytes(words: Uint32Array): Uint8Array {
  const out = new Uint8Array(4 * words.length)
  const view = new DataView(out.buffer)
  words.forEach((w, i) => view.setUint32(4 * i, w, true))
  return out
}

describe('PRG expansion: known answers', () => {
  test('the AES-CTR and ChaCha20 primitives match their published vectors', async () => {
    for (const v of published.aesCtr) {
      const key = await subtle().importKey('raw', hex(v.key), { name: 'AES-CTR' }, false, ['encrypt'])
      const ct = new Uint8Array(await subtle().encrypt({ name: 'AES-CTR', counter: hex(v.counter), length: 128 }, key, hex(v.plaintext)))
      expect(toHex(ct)).toBe(v.ciphertext)
    }
    for (const v of published.chacha20) {
      const pt = v.plaintext !== undefined ? hex(v.plaintext) : new Uint8Array(Buffer.from(v.plaintextAscii ?? '', 'ascii'))
      expect(toHex(chacha20(hex(v.key), hex(v.nonce), pt, undefined, v.counter))).toBe(v.ciphertext)
    }
  })

  test.each(prg.cases.map((c) => [c.algorithm, c.seed.slice(0, 8), c.words, c] as const))(
    'expandSeed %s seed %s… × %i words equals the OpenSSL keystream',
    async (_a, _s, _w, c) => {
      const words = await expandSeed(hex(c.seed), c.words, c.algorithm)
      const bytes = wordsToBytes(words)
      if (c.keystream !== undefined) expect(toHex(bytes)).toBe(c.keystream)
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(c.sha256)
    },
  )

  test('ChaCha20 expansion of the all-zero seed is RFC 8439 A.2 test vector #1', async () => {
    const v = published.chacha20[0] as Published['chacha20'][number]
    expect(toHex(wordsToBytes(await expandSeed(hex(v.key), 16, PrgAlgorithm.ChaCha20)))).toBe(v.ciphertext)
  })

  test('AES-CTR expansion agrees with a third implementation (@noble/ciphers ctr)', async () => {
    const seed = new Uint8Array(32).map((_, i) => 7 * i + 1)
    const ours = wordsToBytes(await expandSeed(seed, 5000, PrgAlgorithm.AesCtr))
    expect(toHex(ctr(seed, new Uint8Array(16)).encrypt(new Uint8Array(20_000)))).toBe(toHex(ours))
  })

  test('masks add and subtract modulo 2^32; applyMasks cancels what it adds', async () => {
    const target = new Uint32Array([0, 1, 0xffffffff, 5])
    addInto(target, new Uint32Array([1, 0xffffffff, 1, 0x80000000]))
    expect([...target]).toEqual([1, 0, 0, 0x80000005])
    subtractInto(target, new Uint32Array([2, 1, 1, 0x80000006]))
    expect([...target]).toEqual([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff])
    const x = Uint32Array.from({ length: 1000 }, (_, i) => i * 2654435761)
    const y = Uint32Array.from(x)
    const seeds = [1, 2, 3].map((s) => new Uint8Array(32).fill(s))
    await applyMasks(y, seeds.map((seed) => ({ seed, sign: 1 as const })), PrgAlgorithm.AesCtr)
    expect(y).not.toEqual(x)
    await applyMasks(y, seeds.map((seed) => ({ seed, sign: -1 as const })), PrgAlgorithm.AesCtr, 1)
    expect(y).toEqual(x)
  })

  test('seeds must be 32 bytes', async () => {
    await expect(expandSeed(new Uint8Array(16), 4, PrgAlgorithm.AesCtr)).rejects.toThrow(RangeError)
  })
})

describe('X25519 key agreement: RFC 7748', () => {
  const dh = published.x25519DiffieHellman
  test.each(['webcrypto', 'noble'] as const)('%s backend computes the §5.2 and §6.1 vectors', async (backend) => {
    if (backend === 'webcrypto') expect(await detectX25519Backend()).toBe('webcrypto') // Node 20 has native X25519
    for (const v of published.x25519) {
      expect(toHex(await (await X25519Agreement.create(hex(v.scalar), backend)).agree(hex(v.u)))).toBe(v.output)
    }
    expect(toHex(publicKeyOf(hex(dh.alicePrivate)))).toBe(dh.alicePublic)
    expect(toHex(publicKeyOf(hex(dh.bobPrivate)))).toBe(dh.bobPublic)
    expect(toHex(await (await X25519Agreement.create(hex(dh.alicePrivate), backend)).agree(hex(dh.bobPublic)))).toBe(dh.shared)
    expect(toHex(await (await X25519Agreement.create(hex(dh.bobPrivate), backend)).agree(hex(dh.alicePublic)))).toBe(dh.shared)
  })

  test.each(['webcrypto', 'noble'] as const)('%s backend rejects a low-order peer key (all-zero output, RFC 7748 §6.1)', async (backend) => {
    const agreement = await X25519Agreement.create(hex(dh.alicePrivate), backend)
    await expectCode(() => agreement.agree(new Uint8Array(32)), 'HEARTH_ERR_SECAGG_TAMPERED')
  })
})

describe('HKDF-SHA256 derivations', () => {
  test('noble hkdf reproduces RFC 5869 test case 1', () => {
    for (const v of published.hkdfSha256) {
      expect(toHex(hkdf(sha256, hex(v.ikm), hex(v.salt), hex(v.info), v.length))).toBe(v.okm)
    }
  })

  test('keys are separated by purpose, round, group and pair, and symmetric in the pair', () => {
    const ikm = new Uint8Array(32).fill(9)
    const base = derivePairKey(ikm, KeyPurpose.PairwiseMask, { roundId: 1, groupId: 0 }, 3, 8)
    expect(toHex(derivePairKey(ikm, KeyPurpose.PairwiseMask, { roundId: 1, groupId: 0 }, 8, 3))).toBe(toHex(base))
    const others = [
      derivePairKey(ikm, KeyPurpose.ShareEncryption, { roundId: 1, groupId: 0 }, 3, 8),
      derivePairKey(ikm, KeyPurpose.PairwiseMask, { roundId: 2, groupId: 0 }, 3, 8),
      derivePairKey(ikm, KeyPurpose.PairwiseMask, { roundId: 1, groupId: 1 }, 3, 8),
      derivePairKey(ikm, KeyPurpose.PairwiseMask, { roundId: 1, groupId: 0 }, 3, 9),
      deriveKey(ikm, KeyPurpose.SelfMask, { roundId: 1, groupId: 0 }, [3]),
    ].map(toHex)
    expect(new Set([toHex(base), ...others]).size).toBe(6)
  })
})

describe('AES-GCM share envelopes', () => {
  const key = new Uint8Array(32).fill(4)
  const context = { roundId: 5, groupId: 2 }

  test('round-trips and opens a ciphertext made by OpenSSL', async () => {
    const aad = sharesAad(context, 1, 2)
    const pt = new Uint8Array(96).fill(7)
    expect(await open(key, aad, await seal(key, aad, pt), 'test')).toEqual(pt)
    const iv = new Uint8Array(12).fill(1)
    const cipher = createCipheriv('aes-256-gcm', key, iv).setAAD(aad)
    const body = Buffer.concat([cipher.update(pt), cipher.final(), cipher.getAuthTag()])
    expect(await open(key, aad, new Uint8Array(Buffer.concat([iv, body])), 'openssl')).toEqual(pt)
  })

  test('a flipped bit, another pair, direction or round is rejected as tampered', async () => {
    const pt = new Uint8Array(96).fill(7)
    const sealed = await seal(key, sharesAad(context, 1, 2), pt)
    for (let i = 0; i < sealed.length; i += 17) {
      const bad = Uint8Array.from(sealed)
      bad[i] = (bad[i] as number) ^ 1
      await expectCode(() => open(key, sharesAad(context, 1, 2), bad, 'flipped'), 'HEARTH_ERR_SECAGG_TAMPERED')
    }
    await expectCode(() => open(key, sharesAad(context, 2, 1), sealed, 'reversed'), 'HEARTH_ERR_SECAGG_TAMPERED')
    await expectCode(() => open(key, sharesAad(context, 1, 3), sealed, 'other pair'), 'HEARTH_ERR_SECAGG_TAMPERED')
    await expectCode(() => open(key, sharesAad({ roundId: 6, groupId: 2 }, 1, 2), sealed, 'replay'), 'HEARTH_ERR_SECAGG_TAMPERED')
    await expectCode(() => open(key, sharesAad(context, 1, 2), sealed.subarray(0, 20), 'short'), 'HEARTH_ERR_SECAGG_TAMPERED')
  })
})

describe('base64 in control messages', () => {
  test('round-trips every length and rejects bad text naming the field', async () => {
    for (let n = 0; n < 40; n++) {
      const bytes = new Uint8Array(n).map((_, i) => (i * 37 + n) & 0xff)
      expect(toBase64(bytes)).toBe(Buffer.from(bytes).toString('base64'))
      expect(fromBase64(toBase64(bytes), 'x')).toEqual(bytes)
    }
    const error = await expectCode(() => fromBase64('ab$=', 'maskingKey'), 'HEARTH_ERR_MALFORMED_MESSAGE')
    expect(error.message).toContain('maskingKey')
    await expectCode(() => fromBase64(toBase64(new Uint8Array(31)), 'maskingKey', 32), 'HEARTH_ERR_MALFORMED_MESSAGE')
  })
})
