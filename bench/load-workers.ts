/**
 * The parent's side of the load benchmark's device processes (`load-worker.ts`): forks them,
 * splits the devices among them, and gathers their reports.
 */
import { fork } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { DeviceFleet } from './load-fleet.ts'
import type { FleetOptions, FleetReport } from './load-fleet.ts'
import type { WorkerCommand, WorkerEvent } from './load-worker.ts'

const WORKER = fileURLToPath(new URL('./load-worker.ts', import.meta.url))

class DeviceWorker {
  readonly #child: ChildProcess
  readonly #waiting = new Map<WorkerEvent['type'], (event: WorkerEvent) => void>()
  readonly exited: Promise<number | null>
  /** Resolves once the process has loaded its modules and listens for commands. */
  readonly ready: Promise<void>
  #failure: Error | undefined

  constructor(onProgress: (connected: number) => void) {
    // `--import tsx` rather than the parent's execArgv: the parent may run under vitest or tsx.
    this.#child = fork(WORKER, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    this.#child.on('message', (event: WorkerEvent) => {
      if (event.type === 'progress') onProgress(event.connected)
      else if (event.type === 'failed') this.#fail(new Error(`a device process failed: ${event.message}`))
      else this.#waiting.get(event.type)?.(event)
    })
    this.exited = new Promise((resolve) => this.#child.once('exit', (code) => resolve(code)))
    this.ready = new Promise((resolve, reject) => {
      this.#waiting.set('ready', () => resolve())
      this.#waiting.set('failed', () => reject(this.#failure))
    })
    void this.exited.then((code) => this.#fail(new Error(`a device process exited with ${code}`)))
  }

  /** Sends `command` and resolves with the event of type `reply`. */
  request<T extends WorkerEvent['type']>(command: WorkerCommand, reply: T): Promise<Extract<WorkerEvent, { type: T }>> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure)
    return new Promise((resolve, reject) => {
      this.#waiting.set(reply, (event) => {
        this.#waiting.delete(reply)
        resolve(event as Extract<WorkerEvent, { type: T }>)
      })
      this.#waiting.set('failed', () => reject(this.#failure))
      this.#child.send(command)
    })
  }

  kill(): void {
    if (this.#child.exitCode === null) this.#child.kill('SIGKILL')
  }

  #fail(error: Error): void {
    this.#failure ??= error
    this.#waiting.get('failed')?.({ type: 'failed', message: error.message })
  }
}

/** Simulated devices, wherever they run. */
export interface Devices {
  /** Opens `options.clients` devices' sockets; resolves once each tried. */
  connect(options: FleetOptions): Promise<FleetReport[]>
  /** Checks every connected device in; resolves once each was welcomed or failed. */
  checkIn(): Promise<FleetReport[]>
  reports(): Promise<FleetReport[]>
  close(): Promise<void>
}

/** Devices in this process: no fork, for the smoke test and small runs. */
export class LocalDevices implements Devices {
  #fleet: DeviceFleet | undefined
  readonly #onProgress: (connected: number) => void

  constructor(onProgress: (connected: number) => void = () => {}) {
    this.#onProgress = onProgress
  }

  async connect(options: FleetOptions): Promise<FleetReport[]> {
    this.#fleet = new DeviceFleet(options)
    await this.#fleet.connect(this.#onProgress)
    return this.reports()
  }

  async checkIn(): Promise<FleetReport[]> {
    await this.#fleet?.checkIn()
    return this.reports()
  }

  async reports(): Promise<FleetReport[]> {
    return this.#fleet === undefined ? [] : [this.#fleet.report()]
  }

  async close(): Promise<void> {
    await this.#fleet?.close()
  }
}

/** Devices spread over `processes` child processes. */
export class DeviceWorkers implements Devices {
  readonly #workers: DeviceWorker[]
  readonly #progress: number[]

  private constructor(processes: number, onProgress: (connected: number) => void) {
    this.#progress = Array.from({ length: processes }, () => 0)
    this.#workers = Array.from(
      { length: processes },
      (_, i) =>
        new DeviceWorker((n) => {
          this.#progress[i] = n
          onProgress(this.#progress.reduce((a, b) => a + b, 0))
        }),
    )
  }

  /** Forks `processes` device processes and resolves once each has loaded. */
  static async fork(processes: number, onProgress: (connected: number) => void = () => {}): Promise<DeviceWorkers> {
    const workers = new DeviceWorkers(processes, onProgress)
    try {
      await Promise.all(workers.#workers.map((worker) => worker.ready))
      return workers
    } catch (error) {
      workers.kill()
      throw error
    }
  }

  /** Opens `options.clients` devices' sockets, evenly over the processes; resolves once each tried. */
  async connect(options: FleetOptions): Promise<FleetReport[]> {
    const n = this.#workers.length
    const events = await Promise.all(
      this.#workers.map((worker, i) => {
        // Even shares, the remainder to the first processes.
        const share = (k: number): number => Math.floor(options.clients / n) + (k < options.clients % n ? 1 : 0)
        let firstDevice = options.firstDevice
        for (let k = 0; k < i; k++) firstDevice += share(k)
        return worker.request({ type: 'start', options: { ...options, clients: share(i), firstDevice } }, 'connected')
      }),
    )
    return events.map((e) => e.report)
  }

  /** Checks every connected device in; resolves once each was welcomed or failed. */
  async checkIn(): Promise<FleetReport[]> {
    const events = await Promise.all(this.#workers.map((worker) => worker.request({ type: 'check-in' }, 'checked-in')))
    return events.map((e) => e.report)
  }

  async reports(): Promise<FleetReport[]> {
    const events = await Promise.all(this.#workers.map((worker) => worker.request({ type: 'report' }, 'report')))
    return events.map((e) => e.report)
  }

  /** Closes every device socket, then lets the processes exit. */
  async close(): Promise<void> {
    await Promise.allSettled(this.#workers.map((worker) => worker.request({ type: 'close' }, 'closed')))
    const timer = setTimeout(() => this.kill(), 10_000)
    await Promise.all(this.#workers.map((worker) => worker.exited))
    clearTimeout(timer)
  }

  kill(): void {
    for (const worker of this.#workers) worker.kill()
  }
}
