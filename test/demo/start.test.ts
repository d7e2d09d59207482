/**
 * `npm start` as a user runs it: `hearth demo` in a child process (plain Node, no bundler), with
 * real sockets. Rounds must publish versions, the demo page must be served, and Ctrl-C (SIGINT)
 * must stop everything promptly with exit code 0.
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'

const HEARTH = fileURLToPath(new URL('../../bin/hearth.js', import.meta.url))

/** Resolves with the first match of `pattern` in the child's stdout so far, or rejects on exit. */
function waitForOutput(child: ChildProcess, output: () => string, pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      const match = output().match(pattern)
      if (match === null) return
      cleanup()
      resolve(match)
    }
    const onExit = (code: number | null): void => {
      cleanup()
      reject(new Error(`hearth demo exited (${code}) before printing ${pattern}:\n${output()}`))
    }
    const timer = setTimeout(() => {
      cleanup()
      reject(new Error(`no ${pattern} within ${timeoutMs} ms:\n${output()}`))
    }, timeoutMs)
    const cleanup = (): void => {
      clearTimeout(timer)
      child.stdout?.off('data', check)
      child.off('exit', onExit)
    }
    child.stdout?.on('data', check)
    child.on('exit', onExit)
    check()
  })
}

describe('npm start (hearth demo)', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'hearth-demo-'))
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }))

  it('publishes model versions, serves the demo page, and stops on SIGINT', async () => {
    const args = [HEARTH, 'demo', '--port', '0', '--demo-port', '0', '--clients', '4', '--min-cohort', '3', '--max-cohort', '4', '--data-dir', dataDir]
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (out += chunk))
    try {
      const [, demoUrl] = await waitForOutput(child, () => out, /Hearth demo:\s+(http:\/\/\S+)/, 120_000)
      const page = await fetch(`${demoUrl}`)
      expect(page.status).toBe(200)
      expect(await page.text()).toContain('hearth')
      await waitForOutput(child, () => out, /round \d+ published model version \d+/, 60_000)

      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
      const stoppedAt = Date.now()
      child.kill('SIGINT')
      expect(await exited).toBe(0)
      expect(Date.now() - stoppedAt).toBeLessThan(10_000)
      expect(out).toContain('Stopped.')
      expect(out).not.toMatch(/Error|device \d+:/)
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL')
    }
  }, 200_000)
})
