/**
 * A child process of the load benchmark that runs one {@link DeviceFleet}, so that the simulated
 * devices spread over processes (and cores) and none holds more sockets than its descriptor
 * limit allows. Driven over the IPC channel of `child_process.fork` (`load-workers.ts`).
 */
import { DeviceFleet } from './load-fleet.ts'
import type { FleetOptions, FleetReport } from './load-fleet.ts'

/** Parent → worker. */
export type WorkerCommand =
  | { readonly type: 'start'; readonly options: FleetOptions }
  | { readonly type: 'check-in' }
  | { readonly type: 'report' }
  | { readonly type: 'close' }

/** Worker → parent. */
export type WorkerEvent =
  | { readonly type: 'ready' }
  | { readonly type: 'progress'; readonly connected: number }
  | { readonly type: 'connected'; readonly report: FleetReport }
  | { readonly type: 'checked-in'; readonly report: FleetReport }
  | { readonly type: 'report'; readonly report: FleetReport }
  | { readonly type: 'closed' }
  | { readonly type: 'failed'; readonly message: string }

/** How often a worker tells its parent how many devices are connected, during the ramp. */
const PROGRESS_EVERY = 250

function post(event: WorkerEvent): void {
  process.send?.(event)
}

if (process.send !== undefined) {
  let fleet: DeviceFleet | undefined
  process.on('message', (command: WorkerCommand) => {
    void (async () => {
      try {
        switch (command.type) {
          case 'start':
            fleet = new DeviceFleet(command.options)
            await fleet.connect((n) => {
              if (n % PROGRESS_EVERY === 0) post({ type: 'progress', connected: n })
            })
            post({ type: 'connected', report: fleet.report() })
            return
          case 'check-in':
            await fleet?.checkIn()
            if (fleet !== undefined) post({ type: 'checked-in', report: fleet.report() })
            return
          case 'report':
            if (fleet !== undefined) post({ type: 'report', report: fleet.report() })
            return
          case 'close':
            await fleet?.close()
            post({ type: 'closed' })
            process.disconnect()
            return
        }
      } catch (error) {
        post({ type: 'failed', message: error instanceof Error ? (error.stack ?? error.message) : String(error) })
      }
    })()
  })
  post({ type: 'ready' })
}
