/**
 * A small static file server for the demo page and the built library (and, in tests, test
 * pages). Serves `.wasm` with its MIME type so browsers can stream-compile it.
 */
import fastifyStatic from '@fastify/static'
import Fastify from 'fastify'
import type { FastifyInstance } from 'fastify'

export interface StaticMount {
  /** URL prefix, starting and ending with `/`. */
  readonly prefix: string
  /** Absolute directory path. */
  readonly dir: string
}

export interface StaticServer {
  readonly url: string
  readonly app: FastifyInstance
  close(): Promise<void>
}

/** Serves `mounts` on `host:port` (port 0 picks a free one). */
export async function startStaticServer(mounts: readonly StaticMount[], host = '127.0.0.1', port = 0): Promise<StaticServer> {
  const app = Fastify({ logger: false })
  mounts.forEach((mount, index) => {
    void app.register(fastifyStatic, {
      root: mount.dir,
      prefix: mount.prefix,
      // @fastify/static decorates the reply once; later mounts must not decorate again.
      decorateReply: index === 0,
      cacheControl: false,
      etag: true,
    })
  })
  const url = await app.listen({ host, port })
  return { url, app, close: () => app.close() }
}
