/**
 * The CLI's client of a running aggregator's admin API: bearer token, JSON, and failures turned
 * into `HearthError`s with the server's own code, so every command prints errors alike.
 */
import { errorFromBody, HearthError } from '../../protocol/errors.ts'
import { RoundDocumentError } from '../config/round-document.ts'

/** Environment variable holding the admin token when `--token` is not given. */
export const ADMIN_TOKEN_ENV = 'HEARTH_ADMIN_TOKEN'

export class AdminClient {
  readonly url: string
  readonly #token: string | undefined
  readonly #headers: Readonly<Record<string, string>>

  /**
   * `url` is the aggregator's base URL, e.g. `http://127.0.0.1:8787`; a trailing slash is
   * ignored. `headers` go with every request (e.g. `x-hearth-actor`).
   */
  constructor(url: string, token: string | undefined, headers: Readonly<Record<string, string>> = {}) {
    this.url = url.replace(/\/+$/, '')
    this.#token = token
    this.#headers = headers
  }

  /** GETs `path` (starting with `/`) and returns the JSON body. Throws `HearthError`. */
  get<T>(path: string): Promise<T> {
    return this.#request<T>('GET', path)
  }

  /** POSTs `body` as JSON to `path` and returns the JSON answer. Throws `HearthError`. */
  post<T>(path: string, body: unknown): Promise<T> {
    return this.#request<T>('POST', path, body)
  }

  async #request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { ...this.#headers }
    if (this.#token !== undefined) headers.authorization = `Bearer ${this.#token}`
    if (body !== undefined) headers['content-type'] = 'application/json'
    let response: Response
    try {
      response = await fetch(`${this.url}${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) })
    } catch (error) {
      throw new HearthError('HEARTH_ERR_TRANSPORT', `could not reach ${this.url}: ${(error as Error).message}`, { cause: error })
    }
    const parsed: unknown = await response.json().catch(() => undefined)
    if (response.status >= 400 || parsed === undefined) {
      throw typeof parsed === 'object' && parsed !== null ? bodyError(parsed) : new HearthError('HEARTH_ERR_TRANSPORT', `${this.url}${path} answered ${response.status}`)
    }
    return parsed as T
  }
}

/** The error an answer's body describes; a refused round document keeps its problems. */
function bodyError(body: { code?: unknown; message?: unknown; problems?: unknown }): HearthError {
  const { problems } = body
  const listed = Array.isArray(problems) && problems.every((p) => typeof p === 'string')
  return listed && body.code === 'HEARTH_ERR_INVALID_CONFIG' ? new RoundDocumentError(problems) : errorFromBody(body)
}

/** Parses `--url`, rejecting anything but http(s); returns null when it is not a URL. */
export function httpUrl(value: string): string | null {
  try {
    const url = new URL(value)
    return url.protocol === 'http:' || url.protocol === 'https:' ? value.replace(/\/+$/, '') : null
  } catch {
    return null
  }
}
