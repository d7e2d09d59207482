/**
 * The aggregator under load, as a real child process (`node bin/hearth.js aggregator start`) on
 * an ephemeral port with a fresh SQLite data directory, so that its CPU time and memory are its
 * own and not the simulated devices'. Both are read from `/proc/<pid>` (Linux; proc(5)): no
 * scrape the aggregator would have to serve, and the kernel's accounting rather than the
 * process's own view.
 */
import { execFileSync, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ROUTES } from '../protocol/messages.ts'
import type { RoundRecord } from '../aggregator/store/store.ts'

export interface AggregatorProcessOptions {
  /** `--model` value: name[:BxD]. */
  readonly model: string
  readonly minCohort: number
  readonly maxCohort: number
  readonly uploadTimeoutMs: number
  readonly selectionTimeoutMs: number
  readonly pauseMs: number
  readonly aggregation: 'plain' | 'secagg'
}

/** CPU and memory of a process at one instant. */
export interface ProcessSample {
  /** Epoch ms. */
  readonly at: number
  /** User + system CPU time since the process started, seconds. */
  readonly cpuSeconds: number
  readonly rssBytes: number
  /**
   * Time the main thread (the event loop) spent runnable but waiting for a CPU since it started,
   * seconds (/proc/<pid>/schedstat, second field; NaN where the kernel does not keep it). On a
   * shared machine this is how much other work delayed the aggregator.
   */
  readonly runQueueSeconds: number
}

const ROOT = fileURLToPath(new URL('../', import.meta.url))
/** Log lines kept for the error message if the process fails; the rest are dropped. */
const KEPT_LINES = 40

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (sysconf(_SC_CLK_TCK)). */
function clockTicks(): number {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
  } catch {
    return 100
  }
}

export class AggregatorProcess {
  readonly url: string
  readonly wsUrl: string
  readonly appKey: string
  readonly #adminToken: string
  readonly #child: ChildProcess
  readonly #dataDir: string
  readonly #log: string[]
  readonly #exited: Promise<number | null>
  readonly #ticks = clockTicks()

  private constructor(child: ChildProcess, url: string, dataDir: string, appKey: string, adminToken: string, log: string[], exited: Promise<number | null>) {
    this.#child = child
    this.url = url
    this.wsUrl = url.replace(/^http/, 'ws') + ROUTES.roundsSocket
    this.#dataDir = dataDir
    this.appKey = appKey
    this.#adminToken = adminToken
    this.#log = log
    this.#exited = exited
  }

  /** Starts the aggregator and resolves once it listens. */
  static async start(options: AggregatorProcessOptions, timeoutMs = 60_000): Promise<AggregatorProcess> {
    const dataDir = await mkdtemp(join(tmpdir(), 'hearth-bench-load-'))
    const appKey = randomBytes(16).toString('base64url')
    const adminToken = randomBytes(16).toString('base64url')
    const args = [
      'bin/hearth.js', 'aggregator', 'start',
      '--port', '0', '--host', '127.0.0.1', '--data-dir', dataDir,
      '--model', options.model,
      '--min-cohort', String(options.minCohort), '--max-cohort', String(options.maxCohort),
      '--selection-timeout', String(options.selectionTimeoutMs),
      '--upload-timeout', String(options.uploadTimeoutMs),
      '--pause', String(options.pauseMs),
      '--aggregation', options.aggregation,
      '--log-level', 'info',
    ]
    // Secrets through the environment, as the CLI recommends (not on a command line `ps` shows).
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, HEARTH_APP_KEYS: appKey, HEARTH_ADMIN_TOKEN: adminToken },
    })
    const log: string[] = []
    const keep = (line: string): void => {
      log.push(line)
      if (log.length > KEPT_LINES) log.shift()
    }
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    let pending = ''
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL')
        reject(new Error(`the aggregator did not listen within ${timeoutMs} ms:\n${log.join('\n')}`))
      }, timeoutMs)
      child.stdout?.on('data', (chunk: Buffer) => {
        const lines = (pending + chunk.toString()).split('\n')
        pending = lines.pop() ?? ''
        for (const line of lines) {
          keep(line)
          if (!line.includes('Hearth aggregator listening')) continue
          clearTimeout(timer)
          resolve((JSON.parse(line) as { url: string }).url)
        }
      })
      child.stderr?.on('data', (chunk: Buffer) => keep(chunk.toString()))
      void exited.then((code) => {
        clearTimeout(timer)
        reject(new Error(`the aggregator exited with ${code} before listening:\n${log.join('\n')}`))
      })
    })
    return new AggregatorProcess(child, url, dataDir, appKey, adminToken, log, exited)
  }

  get pid(): number {
    return this.#child.pid ?? -1
  }

  /** Recent log lines, for diagnostics. */
  recentLog(): string {
    return this.#log.join('\n')
  }

  /** CPU time, resident memory and run-queue wait now, from /proc/<pid>/stat, status and schedstat. */
  async sample(): Promise<ProcessSample> {
    const [stat, status, schedstat] = await Promise.all([
      readFile(`/proc/${this.pid}/stat`, 'utf8'),
      readFile(`/proc/${this.pid}/status`, 'utf8'),
      readFile(`/proc/${this.pid}/schedstat`, 'utf8').catch(() => ''),
    ])
    // proc(5): fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const ticks = Number(fields[11]) + Number(fields[12])
    const rssKiB = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN)
    const waitNs = Number(schedstat.split(' ')[1] ?? NaN)
    return { at: Date.now(), cpuSeconds: ticks / this.#ticks, rssBytes: rssKiB * 1024, runQueueSeconds: waitNs / 1e9 }
  }

  /** Round records of the model, newest first (live rounds as they are now). */
  async rounds(model: string, limit = 100): Promise<RoundRecord[]> {
    const body = await this.#admin<{ rounds: RoundRecord[] }>(`/admin/rounds?model=${encodeURIComponent(model)}&limit=${limit}`)
    return body.rounds
  }

  /** One value of the Prometheus exposition at /metrics (the first sample of `name`). */
  async metric(name: string): Promise<number> {
    const response = await fetch(`${this.url}/metrics`, { headers: { authorization: `Bearer ${this.#adminToken}` } })
    const text = await response.text()
    const match = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)
    return Number(match?.[1] ?? NaN)
  }

  /** SIGTERM (a clean close: the round in flight ends with a reason), then removes the data. */
  async stop(): Promise<void> {
    if (this.#child.exitCode === null) {
      this.#child.kill('SIGTERM')
      const timer = setTimeout(() => this.#child.kill('SIGKILL'), 30_000)
      await this.#exited
      clearTimeout(timer)
    }
    await rm(this.#dataDir, { recursive: true, force: true })
  }

  async #admin<T>(path: string): Promise<T> {
    const response = await fetch(this.url + path, { headers: { authorization: `Bearer ${this.#adminToken}` } })
    if (response.status !== 200) throw new Error(`GET ${path} answered ${response.status}: ${await response.text()}`)
    return (await response.json()) as T
  }
}
