/**
 * Builds the browser bundles (the four Vite modes of vite.config.ts) into a folder, and tells
 * whether an existing build is older than its sources. Shared by `npm start`, the browser tests
 * and the browser benchmarks, so each runs against the files an app would load.
 */
import { readdir, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const SOURCE_DIRS = ['client', 'worker', 'protocol']
/** Files every build must contain. */
export const BUNDLE_FILES = ['hearth.js', 'hearth.iife.js', 'hearth.worker.js', 'wasm/tfjs-backend-wasm-simd.wasm', 'hearth-sw.js'] as const

/** Runs the `lib`, `worker`, `iife` and `sw` builds into `outDir` (emptied first); `sw` lists the others' files, so it runs last. */
export async function buildBrowserBundle(outDir: string, logLevel: 'info' | 'warn' | 'silent' = 'warn'): Promise<void> {
  const { build } = await import('vite')
  const previous = process.env.HEARTH_DIST
  process.env.HEARTH_DIST = resolve(outDir)
  try {
    for (const mode of ['lib', 'worker', 'iife', 'sw']) {
      await build({ root: ROOT, mode, logLevel, configFile: join(ROOT, 'vite.config.ts') })
    }
  } finally {
    if (previous === undefined) delete process.env.HEARTH_DIST
    else process.env.HEARTH_DIST = previous
  }
}

async function newestMtime(dir: string): Promise<number> {
  let newest = 0
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name.endsWith('.ts')) {
      newest = Math.max(newest, (await stat(join(entry.parentPath, entry.name))).mtimeMs)
    }
  }
  return newest
}

/** True when `outDir` lacks a bundle file or any is older than a source file or the config. */
export async function bundleIsStale(outDir: string): Promise<boolean> {
  let oldestOutput = Infinity
  for (const file of BUNDLE_FILES) {
    try {
      oldestOutput = Math.min(oldestOutput, (await stat(join(outDir, file))).mtimeMs)
    } catch {
      return true
    }
  }
  const sources = await Promise.all(SOURCE_DIRS.map((dir) => newestMtime(join(ROOT, dir))))
  const config = (await stat(join(ROOT, 'vite.config.ts'))).mtimeMs
  return Math.max(config, ...sources) > oldestOutput
}
