// Regenerates prg.json: the keystreams that protocol/secagg/prg.ts must produce, computed here
// independently with Node's OpenSSL ciphers (createCipheriv), not with WebCrypto or @noble.
//   aes-256-ctr: key = seed, initial counter block = 16 zero bytes (NIST SP 800-38A §6.5).
//   chacha20:    key = seed, nonce = 12 zero bytes, block counter 0 (RFC 8439 §2.4); OpenSSL's
//                16-byte IV is the 4-byte little-endian counter followed by the nonce.
// Usage: node test/secagg/vectors/generate-prg.mjs > test/secagg/vectors/prg.json
import { Buffer } from 'node:buffer'
import { createCipheriv, createHash } from 'node:crypto'
import process from 'node:process'

const seeds = [
  '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f',
  'ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
  createHash('sha256').update('hearth secagg prg vector').digest('hex'),
]
const cases = []
for (const algorithm of ['aes-256-ctr', 'chacha20']) {
  for (const seed of seeds) {
    for (const words of [1, 7, 64, 100_000]) {
      const cipher = createCipheriv(algorithm, Buffer.from(seed, 'hex'), Buffer.alloc(16))
      const stream = Buffer.concat([cipher.update(Buffer.alloc(4 * words)), cipher.final()])
      const entry = { algorithm, seed, words, sha256: createHash('sha256').update(stream).digest('hex') }
      if (words <= 64) entry.keystream = stream.toString('hex')
      cases.push(entry)
    }
  }
}
process.stdout.write(JSON.stringify({ source: 'Node.js OpenSSL createCipheriv; see generate-prg.mjs', cases }, null, 1) + '\n')
