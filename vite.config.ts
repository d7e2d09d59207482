/**
 * The browser builds, one per mode, all into `dist/` (`npm run build` runs the three):
 *
 * - `lib`:    `hearth.js`, the ES module for apps that bundle Hearth;
 * - `worker`: `hearth.worker.js`, the module worker with TensorFlow.js, and `wasm/*.wasm`;
 * - `iife`:   `hearth.iife.js`, the script-tag build that defines `window.Hearth`;
 * - `sw`:     `hearth-sw.js`, the service worker for offline use; it lists the files the other
 *             builds wrote, so it runs last.
 *
 * The page-side builds stay small; TensorFlow.js and the wasm binaries load lazily, from next to
 * the script, only when the worker starts. Each build prints its entry file's size, raw and gzip.
 */
import { createHash } from 'node:crypto'
import { copyFile, mkdir, readdir, readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { gzipSync } from 'node:zlib'
import { defineConfig } from 'vite'
import type { Logger, Plugin, UserConfig } from 'vite'
import { SERVICE_WORKER_FILE } from './client/offline/names.ts'

const require = createRequire(import.meta.url)
const OUT_DIR = process.env.HEARTH_DIST ?? 'dist'

/** Copies the tfjs wasm binaries (single-threaded and SIMD builds) next to the worker. */
function copyTfjsWasm(): Plugin {
  return {
    name: 'hearth:copy-tfjs-wasm',
    apply: 'build',
    async writeBundle(options) {
      const source = dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm'))
      const target = join(options.dir ?? OUT_DIR, 'wasm')
      await mkdir(target, { recursive: true })
      for (const file of await readdir(source)) {
        if (file.endsWith('.wasm')) await copyFile(join(source, file), join(target, file))
      }
    },
  }
}

/**
 * One line per build with what an app pays for the entry file, raw and gzipped (STYLE.md #12),
 * printed at Vite's log level (so quiet builds, like the browser tests', stay quiet).
 */
function reportBundleSize(file: string): Plugin {
  let logger: Logger | undefined
  let outDir = OUT_DIR
  return {
    name: 'hearth:report-bundle-size',
    apply: 'build',
    configResolved(config) {
      logger = config.logger
      outDir = resolve(config.root, config.build.outDir)
    },
    // After Vite's own per-file report, so the summary is the last thing a build prints.
    async closeBundle() {
      const bytes = await readFile(join(outDir, file))
      const kB = (n: number): string => `${(n / 1000).toFixed(1)} kB`
      logger?.info(`[hearth] ${file}: ${kB(bytes.length)} raw, ${kB(gzipSync(bytes).length)} gzip`)
    },
  }
}

/**
 * Writes the precache list into the service worker in place of `self.__WB_MANIFEST`: every
 * script and wasm file already in the output folder, by URL relative to the service worker, with
 * a content hash as revision (so an unchanged file is not downloaded again after an update).
 */
function injectPrecacheManifest(): Plugin {
  const placeholder = 'self.__WB_MANIFEST'
  return {
    name: 'hearth:inject-precache-manifest',
    apply: 'build',
    async generateBundle(options, bundle) {
      const outDir = options.dir ?? OUT_DIR
      const entries: { url: string; revision: string }[] = []
      for (const entry of await readdir(outDir, { withFileTypes: true, recursive: true })) {
        if (!entry.isFile() || entry.name === SERVICE_WORKER_FILE || !/\.(js|wasm)$/.test(entry.name)) continue
        const path = join(entry.parentPath, entry.name)
        const revision = createHash('sha256').update(await readFile(path)).digest('hex').slice(0, 16)
        entries.push({ url: relative(outDir, path).split(sep).join('/'), revision })
      }
      entries.sort((a, b) => a.url.localeCompare(b.url))
      const chunk = bundle[SERVICE_WORKER_FILE]
      if (chunk?.type !== 'chunk' || chunk.code.split(placeholder).length !== 2) {
        this.error(`${SERVICE_WORKER_FILE} must use ${placeholder} exactly once`)
      }
      chunk.code = chunk.code.replace(placeholder, JSON.stringify(entries))
    },
  }
}

const builds: Record<string, UserConfig> = {
  lib: {
    plugins: [reportBundleSize('hearth.js')],
    build: {
      emptyOutDir: true,
      lib: { entry: 'client/index.ts', formats: ['es'], fileName: () => 'hearth.js' },
    },
  },
  worker: {
    plugins: [copyTfjsWasm(), reportBundleSize('hearth.worker.js')],
    build: {
      emptyOutDir: false,
      lib: { entry: 'worker/entry.ts', formats: ['es'], fileName: () => 'hearth.worker.js' },
      // Backends loaded on demand (webgl) become chunks beside the worker, named as Hearth's.
      rolldownOptions: { output: { chunkFileNames: 'hearth.worker.[name]-[hash].js' } },
    },
  },
  iife: {
    plugins: [reportBundleSize('hearth.iife.js')],
    build: {
      emptyOutDir: false,
      lib: { entry: 'client/script-tag.ts', formats: ['iife'], name: 'HearthScript', fileName: () => 'hearth.iife.js' },
    },
  },
  sw: {
    plugins: [injectPrecacheManifest(), reportBundleSize(SERVICE_WORKER_FILE)],
    build: {
      emptyOutDir: false,
      // The manifest goes into the code after a map would be made, which it would then betray.
      sourcemap: false,
      lib: { entry: 'client/offline/sw/service-worker.ts', formats: ['iife'], name: 'HearthServiceWorker', fileName: () => SERVICE_WORKER_FILE },
    },
  },
}

export default defineConfig(({ mode }) => {
  const config = builds[mode]
  if (config === undefined) {
    throw new Error(`unknown build mode "${mode}": use one of ${Object.keys(builds).join(', ')} (npm run build runs all)`)
  }
  return {
    ...config,
    publicDir: false,
    // Lib mode leaves `process.env.NODE_ENV` alone; workbox reads it to drop its development logs.
    define: { 'process.env.NODE_ENV': JSON.stringify('production') },
    build: { outDir: OUT_DIR, sourcemap: true, ...config.build, target: 'es2022', reportCompressedSize: true },
  }
})
