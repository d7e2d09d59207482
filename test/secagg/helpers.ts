import { readFileSync } from 'node:fs'
import { expect } from 'vitest'
import { HearthError } from '../../protocol/errors.ts'

/** Reads a JSON file of `vectors/`. */
export function vectors<T>(name: string): T {
  return JSON.parse(readFileSync(new URL(`./vectors/${name}`, import.meta.url), 'utf8')) as T
}

export function hex(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'hex'))
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')
}

/** Asserts that `fn` throws (or rejects with) a HearthError with `code`. */
export async function expectCode(fn: () => unknown, code: string): Promise<HearthError> {
  try {
    await fn()
  } catch (error) {
    expect(error).toBeInstanceOf(HearthError)
    expect((error as HearthError).code).toBe(code)
    return error as HearthError
  }
  throw new Error(`expected ${code}, nothing was thrown`)
}

/** The plain sum mod 2^32 of the inputs of `members` (indices from 1). */
export function plainSum(inputs: readonly Uint32Array[], members: readonly number[], length: number): Uint32Array {
  const sum = new Uint32Array(length)
  for (const u of members) {
    const x = inputs[u - 1] as Uint32Array
    for (let i = 0; i < length; i++) sum[i] = (sum[i] as number) + (x[i] as number)
  }
  return sum
}
