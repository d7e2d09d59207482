/**
 * Downloads model descriptions and versions from the aggregator over HTTP. Numbered versions
 * are immutable, so each is fetched at most once per session; the browser's HTTP cache (and the
 * service worker, when installed) keeps them across sessions.
 */
import { errorFromBody, HearthError } from '../../protocol/errors.ts'
import { decodeFrame, FrameKind } from '../../protocol/frames.ts'
import { ROUTES } from '../../protocol/messages.ts'
import type { ModelInfo } from '../../protocol/messages.ts'

/** A `fetch` the caller may replace (tests, Node simulations). */
export type FetchFunction = (input: string, init?: RequestInit) => Promise<Response>

/** Header carrying the app key on client endpoints. */
export const APP_KEY_HEADER = 'x-hearth-app-key'

export interface ModelVersion {
  readonly version: number
  readonly weights: Float32Array
}

export class ModelFetcher {
  readonly #base: URL
  readonly #model: string
  readonly #appKey: string
  readonly #fetch: FetchFunction
  #cached: ModelVersion | null = null

  constructor(base: URL, model: string, appKey: string, fetchFunction: FetchFunction) {
    this.#base = base
    this.#model = model
    this.#appKey = appKey
    this.#fetch = fetchFunction
  }

  /** The model's spec and latest version. */
  async info(): Promise<ModelInfo> {
    const response = await this.#get(ROUTES.model(this.#model))
    return (await response.json()) as ModelInfo
  }

  /** The federated weights of `version`. The returned array is the caller's to keep or transfer. */
  async weights(version: number): Promise<ModelVersion> {
    const cached = this.#cached
    if (cached !== null && cached.version === version) {
      return { version, weights: cached.weights.slice() }
    }
    const response = await this.#get(ROUTES.modelVersion(this.#model, version))
    const frame = decodeFrame(new Uint8Array(await response.arrayBuffer()))
    if (frame.kind !== FrameKind.Weights || frame.id !== version) {
      throw new HearthError('HEARTH_ERR_MODEL_MISMATCH', `asked for version ${version}, got a frame of kind ${frame.kind} for ${frame.id}`)
    }
    this.#cached = { version, weights: frame.values.slice() }
    return { version, weights: frame.values }
  }

  async #get(path: string): Promise<Response> {
    const url = new URL(path, this.#base).toString()
    let response: Response
    try {
      response = await this.#fetch(url, { headers: { [APP_KEY_HEADER]: this.#appKey } })
    } catch (cause) {
      throw new HearthError('HEARTH_ERR_TRANSPORT', `GET ${url} failed`, { cause })
    }
    if (!response.ok) {
      let body: { code?: unknown; message?: unknown } = {}
      try {
        body = (await response.json()) as typeof body
      } catch {
        // A proxy's HTML error page: keep the status only.
      }
      const error = errorFromBody(body)
      if (body.code === undefined) error.message = `GET ${url} answered ${response.status}`
      throw error
    }
    return response
  }
}
