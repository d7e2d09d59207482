/**
 * Builds the browser bundles once, into a folder of the test run, so browser tests exercise the
 * very files an app would load.
 */
import { rm } from 'node:fs/promises'
import { resolve } from 'node:path'
import { build } from 'vite'
import type { TestProject } from 'vitest/node'

declare module 'vitest' {
  export interface ProvidedContext {
    distDir: string
  }
}

export default async function setup(project: TestProject): Promise<void> {
  const distDir = resolve('test-results/dist')
  await rm(distDir, { recursive: true, force: true })
  process.env.HEARTH_DIST = distDir
  for (const mode of ['lib', 'worker', 'iife']) {
    await build({ mode, logLevel: 'warn', configFile: resolve('vite.config.ts') })
  }
  project.provide('distDir', distDir)
}
