/**
 * Builds the browser bundles once, into a folder of the test run, so browser tests exercise the
 * very files an app would load.
 */
import { rm } from 'node:fs/promises'
import { resolve } from 'node:path'
import type { TestProject } from 'vitest/node'
import { buildBrowserBundle } from '../../demo/browser-bundle.ts'

declare module 'vitest' {
  export interface ProvidedContext {
    distDir: string
  }
}

export default async function setup(project: TestProject): Promise<void> {
  const distDir = resolve('test-results/dist')
  await rm(distDir, { recursive: true, force: true })
  await buildBrowserBundle(distDir)
  project.provide('distDir', distDir)
}
