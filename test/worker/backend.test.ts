/**
 * Backend selection (worker/backend.ts). The tfjs engine is global to this file's process, so
 * the tests run in order and build on each other; the wasm backend has its own files.
 */
import * as tf from '../../worker/tf.ts'
import { describe, expect, test } from 'vitest'
import { startBackend } from '../../worker/backend.ts'

describe('startBackend', () => {
  test('falls back when a backend hangs, and the late one never takes over', async () => {
    // A webgl backend that needs 300 ms to start (tfjs registers none in Node).
    const makeCpu = tf.findBackendFactory('cpu')
    if (makeCpu === null) throw new Error('the cpu backend is not registered')
    if (tf.findBackendFactory('webgl') !== null) tf.removeBackend('webgl')
    tf.registerBackend('webgl', () => new Promise((resolve) => setTimeout(() => resolve(makeCpu() as tf.KernelBackend), 300)))

    expect(await startBackend(['webgl', 'cpu'], { timeoutMs: 50 })).toBe('cpu')
    await new Promise((resolve) => setTimeout(resolve, 400))
    expect(tf.getBackend()).toBe('cpu')
    // Without care the late start would swap the engine's backend instance under the name 'cpu'.
    expect(tf.backend()).toBe(tf.engine().registry['cpu'])
    expect(await tf.square(tf.tensor1d([1, 2])).data()).toEqual(Float32Array.from([1, 4]))
  })

  test('keeps the running backend when the list accepts it', async () => {
    expect(await startBackend(['wasm', 'cpu'])).toBe('cpu')
    expect(tf.engine().registry['wasm']).toBeUndefined()
  })

  test('says why each backend failed when none starts', async () => {
    await expect(startBackend(['webgl'])).rejects.toMatchObject({ code: 'HEARTH_ERR_BACKEND', message: expect.stringMatching(/webgl: /) })
  })
})
