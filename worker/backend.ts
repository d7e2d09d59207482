/**
 * Starting a TensorFlow.js backend: try each of an ordered list, report the one that started.
 *
 * The tfjs engine is one per JavaScript realm: a worker has one, and so does a Node process
 * running hundreds of simulated devices. Starts are therefore serialized, and a backend that is
 * already active and acceptable is kept rather than switched under models that live on it.
 */
import * as tf from './tf.ts'
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm'
import { HearthError } from '../protocol/errors.ts'
import type { BackendName } from './api.ts'

/** The order of `WorkerInitOptions.backends` when none is given. */
export const DEFAULT_BACKENDS: readonly BackendName[] = ['wasm', 'cpu']

/** How long one backend may take to start before the next is tried. */
export const DEFAULT_BACKEND_TIMEOUT_MS = 15_000

export interface BackendOptions {
  /** Directory of the tfjs `.wasm` files, ending with `/`. */
  readonly wasmBaseUrl?: string
  readonly timeoutMs?: number
}

let starting: Promise<unknown> = Promise.resolve()

/**
 * Activates the first backend of `order` that starts within the timeout and returns its name.
 * Throws `HEARTH_ERR_BACKEND` listing why each one failed.
 */
export function startBackend(order: readonly BackendName[], options: BackendOptions = {}): Promise<BackendName> {
  const run = starting.then(() => startFirst(order, options))
  starting = run.catch(() => undefined)
  return run
}

async function startFirst(order: readonly BackendName[], options: BackendOptions): Promise<BackendName> {
  // Production mode: no debug checks, and no console banner urging Node users towards
  // tfjs-node, which cannot serve here (simulations run the same code as browsers on purpose).
  tf.env().set('PROD', true)
  // `getBackend()` names the last backend asked for, even one that failed; only an initialized
  // one (in the engine's registry) is worth keeping.
  const active = tf.getBackend() as string | null | undefined
  const keep = order.find((name) => name === active && tf.engine().registry[name] !== undefined)
  if (keep !== undefined) return keep
  const failures: string[] = []
  for (const name of order) {
    try {
      await start(name, options)
      return name
    } catch (error) {
      failures.push(`${name}: ${error instanceof Error ? error.message : String(error)}`)
    }
  }
  throw new HearthError('HEARTH_ERR_BACKEND', failures.join('; ') || 'no backend was requested')
}

async function start(name: BackendName, options: BackendOptions): Promise<void> {
  if (name === 'webgl' && tf.findBackendFactory('webgl') === null) await import('@tensorflow/tfjs-backend-webgl')
  if (name === 'wasm') {
    if (options.wasmBaseUrl !== undefined) setWasmPaths(options.wasmBaseUrl)
    // The threaded wasm build spawns its pthread workers from a script URL that bundlers (Vite)
    // rewrite, and `setBackend('wasm')` then never settles; the SIMD single-threaded build is
    // nearly as fast for our small matrices. Must be set before the backend initializes.
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false)
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_BACKEND_TIMEOUT_MS
  let timer: ReturnType<typeof setTimeout> | undefined
  const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)))
  try {
    const outcome = await Promise.race([tf.setBackend(name), timedOut])
    if (outcome === 'timeout') {
      // A pending initialization that resolved later would make itself the active backend behind
      // our back (tfjs-core engine.ts `setBackend` assigns after its await); removing the
      // backend marks the pending promise obsolete.
      tf.removeBackend(name)
      throw new Error(`did not start within ${timeoutMs} ms`)
    }
    if (!outcome) throw new Error('failed to initialize')
    await tf.ready()
  } finally {
    clearTimeout(timer)
  }
}
