/** When the `.wasm` files cannot be loaded, the worker falls back to the next backend. */
import { describe, expect, test } from 'vitest'
import { startBackend } from '../../worker/backend.ts'

describe('a missing wasm binary', () => {
  test('falls back to cpu', async () => {
    expect(await startBackend(['wasm', 'cpu'], { wasmBaseUrl: '/nonexistent/hearth-wasm/' })).toBe('cpu')
  })
})
