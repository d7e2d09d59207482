/**
 * The browser builds, one per mode, all into `dist/` (`npm run build` runs the three):
 *
 * - `lib`:    `hearth.js`, the ES module for apps that bundle Hearth;
 * - `worker`: `hearth.worker.js`, the module worker with TensorFlow.js, and `wasm/*.wasm`;
 * - `iife`:   `hearth.iife.js`, the script-tag build that defines `window.Hearth`.
 *
 * The page-side builds stay small; TensorFlow.js and the wasm binaries load lazily, from next to
 * the script, only when the worker starts.
 */
import { copyFile, mkdir, readdir } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { defineConfig } from 'vite'
import type { Plugin, UserConfig } from 'vite'

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

const builds: Record<string, UserConfig> = {
  lib: {
    build: {
      emptyOutDir: true,
      lib: { entry: 'client/index.ts', formats: ['es'], fileName: () => 'hearth.js' },
    },
  },
  worker: {
    plugins: [copyTfjsWasm()],
    build: {
      emptyOutDir: false,
      lib: { entry: 'worker/entry.ts', formats: ['es'], fileName: () => 'hearth.worker.js' },
      // Backends loaded on demand (webgl) become chunks beside the worker, named as Hearth's.
      rolldownOptions: { output: { chunkFileNames: 'hearth.worker.[name]-[hash].js' } },
    },
  },
  iife: {
    build: {
      emptyOutDir: false,
      lib: { entry: 'client/script-tag.ts', formats: ['iife'], name: 'HearthScript', fileName: () => 'hearth.iife.js' },
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
    build: { ...config.build, outDir: OUT_DIR, sourcemap: true, target: 'es2022', reportCompressedSize: true },
  }
})
