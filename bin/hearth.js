#!/usr/bin/env node
// Runs the TypeScript sources directly, so the checkout needs no build step for Node-side tools.
import { register as registerHook } from 'node:module'
import { register } from 'tsx/esm/api'

// Simulated devices run the worker core, hence TensorFlow.js, in Node (see the hook's comment).
registerHook('./tfjs-resolve-hook.mjs', import.meta.url)
register()
const { main } = await import('./cli.ts')
process.exitCode = await main(process.argv.slice(2))
