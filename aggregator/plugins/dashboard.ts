/**
 * The privacy team's dashboard at `/dashboard/`: static files (`aggregator/dashboard/`) that read
 * `/admin/live` and the ledger API. The page holds no secret; the admin token is typed in and
 * kept in the tab's sessionStorage. Security headers (@fastify/helmet) with a strict content
 * security policy apply to these files only: no inline script or style, same-origin fetches and
 * WebSocket only, no framing.
 */
import { fileURLToPath } from 'node:url'
import helmet from '@fastify/helmet'
import fastifyStatic from '@fastify/static'
import type { FastifyPluginAsync } from 'fastify'

const DASHBOARD_DIR = fileURLToPath(new URL('../dashboard/', import.meta.url))

const dashboardPlugin: FastifyPluginAsync = async (app) => {
  // Encapsulated (no fastify-plugin): helmet's headers stay on the dashboard's routes.
  await app.register(helmet, {
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        frameAncestors: ["'none'"],
        formAction: ["'self'"],
        baseUri: ["'none'"],
        objectSrc: ["'none'"],
      },
    },
  })
  await app.register(fastifyStatic, { root: DASHBOARD_DIR, prefix: '/dashboard/', index: 'index.html', decorateReply: false })
  app.get('/dashboard', async (_request, reply) => reply.redirect('/dashboard/', 301))
}

export default dashboardPlugin
