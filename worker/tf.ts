/**
 * TensorFlow.js as Hearth uses it: the core, the gradients of its ops, and the cpu backend that
 * always works. Importing these instead of the `@tensorflow/tfjs` umbrella keeps layers,
 * converter and data out of the worker bundle (about 1.3 MB down to 0.35 MB); the wasm backend is
 * imported by `backend.ts` and webgl only when asked for.
 */
import '@tensorflow/tfjs-core/dist/register_all_gradients'
import '@tensorflow/tfjs-backend-cpu'

export * from '@tensorflow/tfjs-core'
