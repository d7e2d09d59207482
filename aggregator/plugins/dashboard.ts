/**
 * The privacy team's dashboard at `/dashboard/`: static files (`aggregator/dashboard/`) that read
 * `/admin/live` and the ledger API. The page holds no secret; the admin token is typed in and
 * kept in the tab's sessionStorage. The root's security headers (`security-headers.ts`) apply,
 * with this page's own content security policy: no inline script or style, same-origin fetches
 * and WebSocket only, no framing.
 */
import { fileURLToPath } from 'node:url'
import fastifyStatic from '@fastify/static'
import type { FastifyPluginAsync } from 'fastify'
import { pagePolicy } from './security-headers.ts'

const DASHBOARD_DIR = fileURLToPath(new URL('../dashboard/', import.meta.url))

/** The dashboard page's content security policy. */
export const DASHBOARD_CSP_DIRECTIVES = {
  defaultSrc: ["'self'"],
  scriptSrc: ["'self'"],
  styleSrc: ["'self'"],
  imgSrc: ["'self'", 'data:'],
  connectSrc: ["'self'"],
  frameAncestors: ["'none'"],
  formAction: ["'self'"],
  baseUri: ["'none'"],
  objectSrc: ["'none'"],
} as const

const dashboardPlugin: FastifyPluginAsync = async (app) => {
  // Encapsulated (no fastify-plugin): the page's policy stays on the dashboard's routes.
  app.addHook('onRequest', pagePolicy(DASHBOARD_CSP_DIRECTIVES))
  await app.register(fastifyStatic, { root: DASHBOARD_DIR, prefix: '/dashboard/', index: 'index.html', decorateReply: false })
  app.get('/dashboard', { schema: { response: { 301: { description: 'Moved to /dashboard/', type: 'null' } } } }, async (_request, reply) => reply.redirect('/dashboard/', 301))
}

export default dashboardPlugin
