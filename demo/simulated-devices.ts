/**
 * Simulated devices: the real client (`createHearth`) and the real worker core, in Node, each
 * with an in-memory store and a taste of its own. They record interactions over time and take
 * part in rounds exactly as a browser would, so rounds happen while you watch the demo.
 */
import { WebSocket } from 'ws'
import { createHearth } from '../client/hearth.ts'
import type { Hearth } from '../client/hearth.ts'
import type { RoundEventDetail } from '../client/events.ts'
import { createWorkerCore } from '../worker/core.ts'
import { MemoryDeviceStore } from '../worker/store/memory-store.ts'
import { simulatedUser } from './catalog.ts'

export interface SimulatedDevicesOptions {
  readonly count: number
  readonly aggregatorUrl: string
  readonly appKey: string
  readonly model?: string
  /** Seeds each device's tastes and behaviour (device i uses seed + i). Default 1. */
  readonly seed?: number
  /** Interactions each device records before it joins. Default 40. */
  readonly initialEvents?: number
  /** Mean milliseconds between a device's later interactions. Default 4 000. */
  readonly actionIntervalMs?: number
  readonly onRound?: (device: number, detail: RoundEventDetail) => void
  readonly onError?: (device: number, error: Error) => void
}

export interface SimulatedDevices {
  readonly devices: readonly Hearth[]
  close(): Promise<void>
}

/** Starts `count` simulated devices, one after the other so their check-ins spread out. */
export async function startSimulatedDevices(options: SimulatedDevicesOptions): Promise<SimulatedDevices> {
  const seed = options.seed ?? 1
  const devices: Hearth[] = []
  const timers: ReturnType<typeof setInterval>[] = []
  const close = async (): Promise<void> => {
    timers.forEach(clearInterval)
    await Promise.allSettled(devices.map((device) => device.close()))
  }
  try {
    for (let i = 0; i < options.count; i++) {
      const user = simulatedUser(seed + i)
      const device = await createHearth(
        {
          aggregatorUrl: options.aggregatorUrl,
          appKey: options.appKey,
          model: options.model ?? 'default',
          backends: ['cpu'],
          dbName: `simulated-${i}`,
        },
        {
          worker: createWorkerCore({ openStore: async () => new MemoryDeviceStore(), seed: seed + i }),
          createSocket: (url) => new WebSocket(url),
          fetch: (input, init) => fetch(input, init),
        },
      )
      device.addEventListener('round', (event) => options.onRound?.(i, event.detail))
      device.addEventListener('error', (event) => options.onError?.(i, event.detail.error))
      for (let n = 0; n < (options.initialEvents ?? 40); n++) device.record(user.next())
      await device.flush()
      const interval = options.actionIntervalMs ?? 4_000
      timers.push(setInterval(() => device.record(user.next()), interval * (0.5 + ((i * 7919) % 100) / 100)))
      devices.push(device)
    }
  } catch (error) {
    await close()
    throw error
  }
  return { devices, close }
}
