/**
 * Runs the aggregator: builds the app, listens, logs the URL, and closes cleanly. Embedders (the
 * demo launcher, tests) call {@link startAggregator} and `close()` it themselves; the CLI also
 * asks it to close on SIGINT/SIGTERM.
 */
import type { FastifyInstance } from 'fastify'
import { buildApp } from './app.ts'
import { resolveOptions } from './options.ts'
import type { AggregatorOptions } from './options.ts'

/** A running aggregator. */
export interface AggregatorHandle {
  /** Base URL, e.g. `http://127.0.0.1:8787`; the WebSocket is at `ws…` + `ROUTES.roundsSocket`. */
  readonly url: string
  readonly app: FastifyInstance
  /**
   * Stops taking connections, finishes or aborts the running rounds (participants are told),
   * closes the sockets and the store. Idempotent.
   */
  close(): Promise<void>
  /** Settles when the aggregator has closed, whoever closed it. */
  readonly closed: Promise<void>
}

export interface StartOptions {
  /**
   * Close on the first SIGINT or SIGTERM; a second one exits at once. Default false: a library
   * should not own the process's signals unless asked.
   */
  readonly handleSignals?: boolean
}

/** Builds the aggregator and listens on `options.host`/`options.port`. */
export async function startAggregator(options: AggregatorOptions = {}, start: StartOptions = {}): Promise<AggregatorHandle> {
  const { host, port } = resolveOptions(options)
  const app = await buildApp(options)
  let url: string
  try {
    url = await app.listen({ host, port })
  } catch (error) {
    await app.close()
    throw error
  }
  app.log.info({ url }, 'Hearth aggregator listening')

  let closing: Promise<void> | undefined
  let settle!: () => void
  const closed = new Promise<void>((resolve) => {
    settle = resolve
  })
  const close = (): Promise<void> => {
    closing ??= app.close().finally(() => {
      detach()
      settle()
    })
    return closing
  }

  const onSignal = (signal: NodeJS.Signals): void => {
    if (closing !== undefined) {
      app.log.warn({ signal }, 'second signal: exiting without waiting')
      process.exit(1)
    }
    app.log.info({ signal }, 'closing: finishing or aborting the running rounds')
    close().catch((error: unknown) => {
      app.log.error({ err: error }, 'failed to close cleanly')
      process.exitCode = 1
    })
  }
  const detach = (): void => {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
  if (start.handleSignals === true) {
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
  }

  return { url, app, close, closed }
}
