/**
 * Test helpers for the aggregator: a real server on 127.0.0.1:0 (and `useApp()`, which closes it
 * after each test), WebSocket clients built on the `ws` package that queue what they receive,
 * and HTTP helpers that decode Weights frames.
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'
import { afterEach } from 'vitest'
import WebSocket from 'ws'
import { buildApp } from '../../aggregator/app.ts'
import type { AggregatorOptions } from '../../aggregator/options.ts'
import { decodeFrame, encodeFrame, FrameKind } from '../../protocol/frames.ts'
import { PROTOCOL_VERSION, ROUTES } from '../../protocol/messages.ts'
import type { ServerMessage } from '../../protocol/messages.ts'

/** A model small enough to reason about: 4*2 + 4 + 2*2 + 2 = 18 federated weights. */
export const TINY = { name: 'tiny', mf: { buckets: 4, dim: 2 } } as const
export const TINY_LENGTH = 18
export const APP_KEY = 'test-app-key'

export interface RunningApp {
  readonly app: FastifyInstance
  readonly url: string
  readonly wsUrl: string
  close(): Promise<void>
}

/** Builds the app with test defaults (tiny model, one app key, quiet) and listens. */
export async function listen(options: AggregatorOptions = {}): Promise<RunningApp> {
  const app = await buildApp({ models: [TINY], appKeys: [APP_KEY], ...options })
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, url, wsUrl: url.replace(/^http/, 'ws') + ROUTES.roundsSocket, close: () => app.close() }
}

/** What a test started through {@link useApp}, closed after it. */
export interface AppFixture {
  /** Listens like {@link listen}; closed after the test. Its `close()` may also be called before, more than once. */
  start(options?: AggregatorOptions): Promise<RunningApp>
  /** Checks `n` clients in to `wsUrl`, one after another; closed after the test. */
  join(wsUrl: string, n: number): Promise<TestClient[]>
  /** Closes `client` (a {@link TestClient}, or a device with an async `close()`) after the test; returns it. */
  track<T extends { close(): unknown }>(client: T): T
  /** A fresh temporary directory, removed after the test once the apps are closed. */
  tempDir(): string
}

/**
 * The teardown of tests against a real server: registers an `afterEach` that closes the clients
 * of the test (waiting for those that close asynchronously), then its apps (the last started
 * first), then removes its temporary directories. Call once at the top of a test file or
 * `describe` block.
 */
export function useApp(): AppFixture {
  const clients: { close(): unknown }[] = []
  const apps: RunningApp[] = []
  const dirs: (() => void)[] = []
  afterEach(async () => {
    try {
      await Promise.allSettled(clients.splice(0).map(async (client) => client.close()))
      for (const app of apps.splice(0).reverse()) await app.close()
    } finally {
      for (const remove of dirs.splice(0)) remove()
    }
  })
  const track = <T extends { close(): unknown }>(client: T): T => {
    clients.push(client)
    return client
  }
  return {
    async start(options) {
      const running = await listen(options)
      let closed: Promise<void> | undefined
      const app: RunningApp = { ...running, close: () => (closed ??= running.close()) }
      apps.push(app)
      return app
    },
    async join(wsUrl, n) {
      const joined: TestClient[] = []
      for (let i = 0; i < n; i++) joined.push(track(await TestClient.checkedIn(wsUrl)))
      return joined
    },
    track,
    tempDir() {
      const dir = tempDir()
      dirs.push(dir.remove)
      return dir.path
    },
  }
}

/** A fresh temporary directory, removed by the returned function. */
export function tempDir(): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), 'hearth-aggregator-'))
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) }
}

type MessageOf<T extends ServerMessage['type']> = Extract<ServerMessage, { type: T }>

/** A round-protocol client over a real socket, with an inbox to await messages from. */
export class TestClient {
  readonly socket: WebSocket
  readonly inbox: ServerMessage[] = []
  readonly closed: Promise<{ code: number; reason: string }>
  #waiters: (() => void)[] = []

  private constructor(socket: WebSocket) {
    this.socket = socket
    socket.on('message', (data, isBinary) => {
      if (isBinary) throw new Error('the aggregator sent a binary message')
      this.inbox.push(JSON.parse(String(data)) as ServerMessage)
      for (const wake of this.#waiters.splice(0)) wake()
    })
    this.closed = new Promise((resolve) => {
      socket.on('close', (code, reason) => {
        resolve({ code, reason: reason.toString() })
        for (const wake of this.#waiters.splice(0)) wake()
      })
    })
  }

  static async connect(wsUrl: string, headers: Record<string, string> = {}): Promise<TestClient> {
    const socket = new WebSocket(wsUrl, { headers })
    const client = new TestClient(socket)
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve())
      socket.once('error', reject)
    })
    return client
  }

  /** Connects and checks in; resolves with the welcome. */
  static async checkedIn(wsUrl: string, model: string = TINY.name): Promise<TestClient> {
    const client = await TestClient.connect(wsUrl)
    client.send({ type: 'checkin', protocol: PROTOCOL_VERSION, appKey: APP_KEY, model })
    await client.next('welcome')
    return client
  }

  send(message: unknown): void {
    this.socket.send(JSON.stringify(message))
  }

  sendText(text: string): void {
    this.socket.send(text)
  }

  sendBytes(bytes: Uint8Array): void {
    this.socket.send(bytes, { binary: true })
  }

  /** Sends an Update frame for `roundId`. */
  upload(roundId: number, values: Float32Array): void {
    this.sendBytes(encodeFrame({ kind: FrameKind.Update, id: roundId, values }))
  }

  /** Removes and returns the first queued message of `type` (and matching `where`), waiting for it. */
  async next<T extends ServerMessage['type']>(
    type: T,
    where: (message: MessageOf<T>) => boolean = () => true,
    timeoutMs = 5_000,
  ): Promise<MessageOf<T>> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const index = this.inbox.findIndex((m) => m.type === type && where(m as MessageOf<T>))
      if (index >= 0) return this.inbox.splice(index, 1)[0] as MessageOf<T>
      const left = deadline - Date.now()
      if (left <= 0 || this.socket.readyState === WebSocket.CLOSED) {
        throw new Error(`no ${type} message; inbox: ${JSON.stringify(this.inbox)}`)
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.#waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }

  /** The next `error` message; fails if it does not carry `code`. */
  async error(code: string): Promise<MessageOf<'error'>> {
    const error = await this.next('error')
    if (error.code !== code) throw new Error(`expected ${code}, got ${error.code}: ${error.message}`)
    return error
  }

  close(): void {
    this.socket.close()
  }
}

/** Fetches and decodes a model version's Weights frame over HTTP. */
export async function fetchWeights(url: string, model: string, version: number | 'latest'): Promise<{ version: number; values: Float32Array }> {
  const response = await fetch(url + ROUTES.modelVersion(model, version))
  if (response.status !== 200) throw new Error(`GET weights answered ${response.status}: ${await response.text()}`)
  const frame = decodeFrame(new Uint8Array(await response.arrayBuffer()))
  if (frame.kind !== FrameKind.Weights) throw new Error(`expected a Weights frame, got kind ${frame.kind}`)
  return { version: frame.id, values: frame.values }
}

/** GETs `path` and parses the JSON body. */
export async function getJson<T>(url: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: T }> {
  const response = await fetch(url + path, { headers })
  return { status: response.status, body: (await response.json()) as T }
}

/** Resolves when `check` holds, polling; fails after `timeoutMs`. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 5_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** A deterministic delta for client `k`: distinct per client and element, exact in float32. */
export function knownDelta(k: number, length: number = TINY_LENGTH): Float32Array {
  const delta = new Float32Array(length)
  for (let i = 0; i < length; i++) delta[i] = ((k + 1) * (i % 5 - 2) + 0.25 * k) / 64
  return delta
}

export interface ChildAggregator {
  readonly child: ChildProcess
  readonly url: string
  readonly wsUrl: string
  /** Resolves with the exit code and signal once the process ended. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** Everything the process wrote so far (stdout then stderr). */
  output(): string
}

/** Runs `node bin/hearth.js aggregator start ...args` and waits for its URL in the logs. */
export async function spawnAggregator(args: readonly string[], timeoutMs = 60_000): Promise<ChildAggregator> {
  const child = spawn(process.execPath, ['bin/hearth.js', 'aggregator', 'start', ...args], {
    cwd: fileURLToPath(new URL('../../', import.meta.url)),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }))
  })
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      // Never leave a stray aggregator behind a failed test.
      child.kill('SIGKILL')
      reject(new Error(`no URL logged within ${timeoutMs} ms:\n${stdout}\n${stderr}`))
    }, timeoutMs)
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString()
      for (const line of stdout.split('\n')) {
        if (!line.includes('Hearth aggregator listening')) continue
        clearTimeout(timer)
        resolve((JSON.parse(line) as { url: string }).url)
      }
    })
    void exited.then(({ code }) => {
      clearTimeout(timer)
      reject(new Error(`exited with ${code} before listening:\n${stdout}\n${stderr}`))
    })
  })
  return { child, url, wsUrl: url.replace(/^http/, 'ws') + ROUTES.roundsSocket, exited, output: () => `${stdout}\n${stderr}` }
}
