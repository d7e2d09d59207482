/**
 * A small static file server for the demo page and the built library (and, in tests, test
 * pages). Serves `.wasm` with its MIME type so browsers can stream-compile it, and Hearth's
 * service worker with `Service-Worker-Allowed: /`, as an app must for the default scope.
 */
import { basename } from 'node:path'
import fastifyStatic from '@fastify/static'
import Fastify from 'fastify'
import type { FastifyInstance } from 'fastify'
import { SERVICE_WORKER_FILE } from '../client/offline/names.ts'

export interface StaticMount {
  /** URL prefix, starting and ending with `/`. */
  readonly prefix: string
  /** Absolute directory path. */
  readonly dir: string
  /** Serve `index.html` for the folder itself. Default true. */
  readonly index?: boolean
}

export interface StaticServer {
  readonly url: string
  readonly app: FastifyInstance
  close(): Promise<void>
}

/** Serves `mounts` on `host:port` (port 0 picks a free one); `routes` may add dynamic routes. */
export async function startStaticServer(
  mounts: readonly StaticMount[],
  host = '127.0.0.1',
  port = 0,
  routes?: (app: FastifyInstance) => void,
): Promise<StaticServer> {
  const app = Fastify({ logger: false })
  mounts.forEach((mount, index) => {
    void app.register(fastifyStatic, {
      root: mount.dir,
      prefix: mount.prefix,
      // @fastify/static decorates the reply once; later mounts must not decorate again.
      decorateReply: index === 0,
      cacheControl: false,
      etag: true,
      setHeaders: (response, path) => {
        if (basename(path) === SERVICE_WORKER_FILE) response.setHeader('Service-Worker-Allowed', '/')
      },
      ...(mount.index === false ? { index: false } : {}),
    })
  })
  routes?.(app)
  const url = await app.listen({ host, port })
  return { url, app, close: () => app.close() }
}
