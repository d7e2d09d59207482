/**
 * Who an admin request is recorded as acting for. The admin token is one shared secret, so the
 * token says only "an admin"; an operator may add a name in `X-Hearth-Actor`, recorded as
 * `admin:<name>`. The name is self-declared: anyone holding the token can claim any name.
 */
import type { FastifyRequest } from 'fastify'

/** The request header carrying the self-declared operator name. */
export const ACTOR_HEADER = 'x-hearth-actor'
/** Longest name kept, in characters; the route schemas refuse longer headers. */
export const ACTOR_MAX_LENGTH = 64

/** Actor of the aggregator's own entries (round outcomes). */
export const SYSTEM_ACTOR = 'system'

/**
 * `admin` for a token-authenticated request, `anonymous` when no admin token is configured (the
 * admin API is open), each with `:<name>` when the request declares a usable name.
 */
export function requestActor(request: FastifyRequest, tokenConfigured: boolean): string {
  const base = tokenConfigured ? 'admin' : 'anonymous'
  const header = request.headers[ACTOR_HEADER]
  const name = sanitizeActorName(typeof header === 'string' ? header : '')
  return name === '' ? base : `${base}:${name}`
}

/**
 * Keeps letters, digits and `. _ @ + -` and space, so that a name can neither forge a second
 * field in a log line nor smuggle markup or control characters into an export.
 */
export function sanitizeActorName(raw: string): string {
  return raw
    .replace(/[^A-Za-z0-9._@+ -]/g, '')
    .trim()
    .slice(0, ACTOR_MAX_LENGTH)
}
