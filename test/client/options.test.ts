import { describe, expect, test } from 'vitest'
import { resolveOptions } from '../../client/options.ts'
import type { HearthOptions } from '../../client/options.ts'
import { HearthError } from '../../protocol/errors.ts'

function rejects(options: unknown, field: string): void {
  try {
    resolveOptions(options as HearthOptions)
  } catch (error) {
    expect(error).toBeInstanceOf(HearthError)
    expect((error as HearthError).code).toBe('HEARTH_ERR_INVALID_ARGUMENT')
    expect((error as HearthError).message).toContain(field)
    return
  }
  throw new Error(`accepted invalid ${field}`)
}

describe('init options', () => {
  test('fills in defaults', () => {
    const resolved = resolveOptions({ aggregatorUrl: 'https://fl.example.com/base', appKey: 'k' })
    expect(resolved.model).toBe('default')
    expect(resolved.federated).toBe(true)
    expect(resolved.backends).toEqual(['wasm', 'cpu'])
    expect(resolved.dbName).toBe('hearth:default')
    expect(resolved.assetsBaseUrl).toBeNull()
  })

  test('normalizes the assets folder to end with a slash', () => {
    const resolved = resolveOptions({ aggregatorUrl: 'http://a', appKey: 'k', assetsBaseUrl: 'https://cdn.example.com/hearth' })
    expect(resolved.assetsBaseUrl?.toString()).toBe('https://cdn.example.com/hearth/')
  })

  test('names the offending field', () => {
    rejects(null, 'options')
    rejects({ appKey: 'k' }, 'aggregatorUrl')
    rejects({ aggregatorUrl: 'not a url', appKey: 'k' }, 'aggregatorUrl')
    rejects({ aggregatorUrl: 'ftp://x', appKey: 'k' }, 'aggregatorUrl')
    rejects({ aggregatorUrl: 'http://x', appKey: '' }, 'appKey')
    rejects({ aggregatorUrl: 'http://x', appKey: 'k', model: 'a/b' }, 'model')
    rejects({ aggregatorUrl: 'http://x', appKey: 'k', backends: ['tpu'] }, 'backends')
    rejects({ aggregatorUrl: 'http://x', appKey: 'k', flushIntervalMs: -1 }, 'flushIntervalMs')
  })
})
