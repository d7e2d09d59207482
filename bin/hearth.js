#!/usr/bin/env node
// Runs the TypeScript sources directly, so the checkout needs no build step for Node-side tools.
import { register } from 'tsx/esm/api'

register()
const { main } = await import('./cli.ts')
process.exitCode = await main(process.argv.slice(2))
