/**
 * Serving a `HearthWorkerApi` over a comlink endpoint: a worker's global scope in `entry.ts`, a
 * `MessagePort` in tests (STYLE.md #7).
 *
 * - Big results (`score`'s scores, `trainRound`'s delta, `rankColumns`' columns) are
 *   transferred, not copied.
 * - Errors keep their catalogue code: comlink serializes a thrown `Error` as its message, name
 *   and stack only, and rebuilds it on the other side with `Object.assign(new Error(), value)`.
 *   We add `code` and `statusCode`, so the page receives an `Error` whose `code` is the
 *   `HEARTH_ERR_...` code (`errorFromBody` turns it back into a `HearthError`).
 */
import { expose, transfer, transferHandlers } from 'comlink'
import type { Endpoint, TransferHandler } from 'comlink'
import { HearthError } from '../protocol/errors.ts'
import { rankColumnBuffers } from '../protocol/ranking.ts'
import type { HearthWorkerApi } from './api.ts'

interface SerializedThrow {
  readonly isError: boolean
  readonly value: unknown
}

let errorCodesInstalled = false

/** Makes comlink's `throw` handler carry `HearthError` codes. Idempotent. */
export function installErrorCodes(): void {
  if (errorCodesInstalled) return
  const original = transferHandlers.get('throw') as TransferHandler<{ value: unknown }, SerializedThrow> | undefined
  if (original === undefined) return
  errorCodesInstalled = true
  const withCodes: TransferHandler<{ value: unknown }, SerializedThrow> = {
    canHandle: (value): value is { value: unknown } => original.canHandle(value),
    serialize(thrown) {
      const [serialized, transferables] = original.serialize(thrown)
      const error = thrown.value
      if (!(error instanceof HearthError) || !serialized.isError) return [serialized, transferables]
      const value = { ...(serialized.value as object), code: error.code, statusCode: error.statusCode }
      return [{ isError: true, value }, transferables]
    },
    deserialize: (serialized) => original.deserialize(serialized),
  }
  transferHandlers.set('throw', withCodes as TransferHandler<unknown, unknown>)
}

/** `api` with its large results marked for transfer. The core returns fresh arrays only. */
export function transferringApi(api: HearthWorkerApi): HearthWorkerApi {
  return {
    init: (options) => api.init(options),
    record: (events) => api.record(events),
    stats: () => api.stats(),
    countEvents: (since) => api.countEvents(since),
    rounds: () => api.rounds(),
    installGlobal: (version, weights) => api.installGlobal(version, weights),
    trainLocal: (plan, budget) => api.trainLocal(plan, budget),
    trainRound: async (request) => {
      const result = await api.trainRound(request)
      return transfer(result, [result.delta.buffer])
    },
    noteRound: (entry) => api.noteRound(entry),
    secaggBegin: (plan, quantization, noise) => api.secaggBegin(plan, quantization, noise),
    secaggStep: async (message, delta) => {
      const output = await api.secaggStep(message, delta)
      return output?.kind === 'masked-input' ? transfer(output, [output.frame.buffer]) : output
    },
    secaggAbort: (roundId) => api.secaggAbort(roundId),
    score: async (items) => {
      const scores = await api.score(items)
      return transfer(scores, [scores.buffer])
    },
    close: () => api.close(),
    // Personalization. `rank` answers with n objects, copied: the page calls `rankColumns`.
    rank: (candidates, context, options) => api.rank(candidates, context, options),
    rankColumns: async (candidates, context, options) => {
      const columns = await api.rankColumns(candidates, context, options)
      return transfer(columns, rankColumnBuffers(columns))
    },
    decisions: (limit) => api.decisions(limit),
    offPolicyEstimate: (request) => api.offPolicyEstimate(request),
    settings: () => api.settings(),
    setConsent: (category, granted) => api.setConsent(category, granted),
    setPaused: (paused) => api.setPaused(paused),
    setFederated: (federated) => api.setFederated(federated),
    exportData: () => api.exportData(),
    deleteData: () => api.deleteData(),
  }
}

/** Exposes `api` on `endpoint` with comlink. */
export function exposeWorkerApi(api: HearthWorkerApi, endpoint: Endpoint): void {
  installErrorCodes()
  expose(transferringApi(api), endpoint)
}
