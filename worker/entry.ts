/**
 * The module Web Worker (`hearth.worker.js`, built by vite.config.ts): the one file that touches
 * the worker global. Everything else is the core, which Node runs directly.
 */
import { createWorkerCore } from './core.ts'
import { exposeWorkerApi } from './expose.ts'

exposeWorkerApi(createWorkerCore(), self)
