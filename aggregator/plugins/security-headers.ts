/**
 * Security headers (@fastify/helmet) on every response, registered once at the root: API
 * answers (JSON, Weights frames, errors) load nothing and are never framed, so their content
 * security policy is `default-src 'none'; frame-ancestors 'none'`; with them come helmet's
 * defaults (`nosniff`, `Referrer-Policy: no-referrer`, HSTS, `X-Frame-Options: DENY`, ...).
 *
 * Two contexts adjust it with the hooks below rather than a second registration: the dashboard
 * swaps in the policy its page needs ({@link pagePolicy}), and the client endpoints are made
 * readable cross-origin ({@link crossOriginReadable}), since shop pages on other origins are
 * their users (who may read them is CORS's job). Caching headers are left alone.
 */
import helmet from '@fastify/helmet'
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'

type Directives = Readonly<Record<string, readonly string[]>>

/** The content security policy of every API response. */
export const API_CSP_DIRECTIVES: Directives = { defaultSrc: ["'none'"], frameAncestors: ["'none'"] }

function policy(directives: Directives): { useDefaults: false; directives: Record<string, string[]> } {
  return { useDefaults: false, directives: Object.fromEntries(Object.entries(directives).map(([name, sources]) => [name, [...sources]])) }
}

const securityHeadersPlugin: FastifyPluginAsync = async (app) => {
  await app.register(helmet, { contentSecurityPolicy: policy(API_CSP_DIRECTIVES), xFrameOptions: { action: 'deny' } })
}

/**
 * An `onRequest` hook that replaces the API policy with `directives` for the routes of its
 * context, through the same helmet registration (`reply.helmet`).
 */
export function pagePolicy(directives: Directives) {
  const contentSecurityPolicy = policy(directives)
  return async (_request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    reply.helmet({ contentSecurityPolicy })
  }
}

/**
 * An `onRequest` hook for public client resources: `Cross-Origin-Resource-Policy: cross-origin`
 * instead of helmet's `same-origin`, so pages that embed Hearth may load them.
 */
export async function crossOriginReadable(_request: FastifyRequest, reply: FastifyReply): Promise<void> {
  reply.header('cross-origin-resource-policy', 'cross-origin')
}

export default fp(securityHeadersPlugin, { name: 'hearth-security-headers', fastify: '5.x' })
