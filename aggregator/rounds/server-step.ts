/**
 * The server optimizer's step for one round, with the state a stateful optimizer (FedAdam and
 * kin) carries between rounds read from and returned for the store: the moments come from the
 * ones stored with the base version, and the new ones are to be stored with the new version in
 * its publishing transaction. A version without matching stored state (the initial weights, a
 * rollback, a version another optimizer published) starts the moments afresh.
 */
import { federatedLayout } from '../../protocol/model-spec.ts'
import type { ModelSpec } from '../../protocol/model-spec.ts'
import type { AggregatorStore, ModelVersionRecord, OptimizerStateRecord } from '../store/store.ts'
import type { AggregateResult, ServerOptimizer } from './strategy.ts'
import { isStateful } from './strategy.ts'

/** The next weights and, for a stateful optimizer, the state to publish with them. */
export interface ServerStep {
  readonly weights: Float32Array
  readonly state?: OptimizerStateRecord
}

/** Applies `optimizer` to `base` (a version of a model of `spec`) and `aggregate`; the result belongs to version `base.version + 1`. */
export async function serverStep(
  optimizer: ServerOptimizer,
  store: Pick<AggregatorStore, 'getOptimizerState'>,
  spec: ModelSpec,
  base: ModelVersionRecord,
  aggregate: AggregateResult,
): Promise<ServerStep> {
  const layout = federatedLayout(spec)
  if (!isStateful(optimizer)) return { weights: optimizer.step(base.weights, aggregate, layout) }
  const saved = await store.getOptimizerState(base.model, base.version)
  const usable = saved !== undefined && saved.optimizer === optimizer.name && saved.m.length === base.weights.length ? saved : null
  const resumed = optimizer.resume(usable)
  const weights = resumed.step(base.weights, aggregate, layout)
  const state = resumed.state()
  if (state === null) return { weights }
  return { weights, state: { model: base.model, version: base.version + 1, optimizer: optimizer.name, ...state } }
}
