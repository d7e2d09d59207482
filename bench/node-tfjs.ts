/**
 * Lets a benchmark started with `tsx bench/....ts` load the worker's TensorFlow.js imports in
 * plain Node: registers the resolve hook `bin/hearth.js` uses (`bin/tfjs-resolve-hook.mjs`).
 *
 * Call `installTfjsNodeResolver()` before the first dynamic import of anything that imports
 * `worker/tf.ts`; static imports are resolved before any code runs.
 */
import { register } from 'node:module'

let installed = false

/** Registers the resolve hook once per process. */
export function installTfjsNodeResolver(): void {
  if (installed) return
  installed = true
  register('../bin/tfjs-resolve-hook.mjs', import.meta.url)
}
