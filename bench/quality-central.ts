/**
 * The benchmark's reference: the same `hearth-mf-v1` item side (MfModel, the very code devices
 * run) trained centrally on everyone's data, with one user vector per user in a table instead of
 * one per device:
 *
 *   score(u, i) = U[u] · t(i) + p(i)
 *
 * Minibatch Adam on the weighted logistic loss with `negatives` items per positive drawn
 * uniformly from the items the user never interacted with, as NCF trains (He et al. 2017, §4.1).
 */
import * as tf from '../worker/tf.ts'
import type { ModelSpec } from '../protocol/model-spec.ts'
import { itemTensors } from '../worker/model/hearth-model.ts'
import { encodeItems, selectRows } from '../worker/model/item-encoding.ts'
import type { EncodedItems } from '../worker/model/item-encoding.ts'
import { lookupRows } from '../worker/model/lookup.ts'
import { MfModel } from '../worker/model/mf-model.ts'
import { seededUniform, shuffle } from '../worker/model/random.ts'
import { itemId } from './quality-data.ts'
import type { QualityDataset, TestCase } from './quality-data.ts'
import { evaluate } from './quality-metrics.ts'
import type { RankingQuality } from './quality-metrics.ts'

export interface CentralOptions {
  readonly spec: ModelSpec
  readonly epochs: number
  readonly batchSize: number
  readonly learningRate: number
  /** Epoch e (from 1) trains at learningRate · learningRateDecay^(e − 1); default 1. */
  readonly learningRateDecay?: number
  readonly negatives: number
  /** λ of λ · mean ‖U[u]‖² over a batch's rows. */
  readonly userL2: number
  /** λ of λ · mean ‖E[h(i)]‖² over a batch's rows. */
  readonly itemL2: number
  readonly seed: number
  readonly useFeatures: boolean
  /** Called after each epoch with its mean loss (and, every `evalEvery` epochs, the quality). */
  readonly onEpoch?: (epoch: number, loss: number, quality: RankingQuality | null) => void
  readonly evalEvery?: number
}

export interface CentralResult {
  readonly quality: RankingQuality
  readonly epochs: number
  readonly seconds: number
  /** The trained federated weights (spec order): the item side. */
  readonly weights: Float32Array
}

/** The catalog's items, encoded once: row r is item r. */
export function encodeCatalog(data: QualityDataset, model: MfModel, useFeatures: boolean): EncodedItems {
  const refs = Array.from({ length: data.items }, (_, item) => {
    const features = useFeatures ? data.features?.[item] : undefined
    return features === undefined ? { item: itemId(item) } : { item: itemId(item), features }
  })
  return encodeItems(refs, model.encoding)
}

/** Scores of `[c.item, ...c.negatives]` for every case, from item side + a user vector per case. */
export function scoreCases(model: MfModel, catalog: EncodedItems, cases: readonly TestCase[], userVector: (c: TestCase) => Float32Array): Float32Array[] {
  const width = 1 + (cases[0]?.negatives.length ?? 0)
  const rows = new Int32Array(cases.length * width)
  const users = new Float32Array(cases.length * width * model.dim)
  cases.forEach((c, n) => {
    rows[n * width] = c.item
    rows.set(c.negatives, n * width + 1)
    const u = userVector(c)
    for (let j = 0; j < width; j++) users.set(u, (n * width + j) * model.dim)
  })
  const scores = tf.tidy(() => {
    const side = model.itemSide(itemTensors(selectRows(catalog, rows)))
    const personal = tf.sum(tf.mul(side.vectors, tf.tensor2d(users, [rows.length, model.dim])), 1)
    return tf.add(personal, side.prior)
  })
  const flat = scores.dataSync() as Float32Array
  scores.dispose()
  return cases.map((_, n) => flat.slice(n * width, (n + 1) * width))
}

/** Trains the model centrally and evaluates it; see the module comment. */
export async function trainCentral(data: QualityDataset, options: CentralOptions): Promise<CentralResult> {
  const started = performance.now()
  const uniform = seededUniform(options.seed)
  const model = MfModel.create(options.spec, uniform)
  const catalog = encodeCatalog(data, model, options.useFeatures)
  const dim = model.dim
  const init = new Float32Array(data.users * dim)
  for (let i = 0; i < init.length; i++) init[i] = 0.1 * (uniform() * 2 - 1) * Math.sqrt(3)
  const users = tf.tidy(() => tf.variable(tf.tensor2d(init, [data.users, dim])))
  const rated = data.train.map((history) => new Set(history))
  const positives: [number, number][] = []
  data.train.forEach((history, user) => history.forEach((item) => positives.push([user, item])))
  const optimizer = tf.train.adam(options.learningRate)
  // tfjs's Adam reads its learning rate at every step but has no public setter.
  const adam = optimizer as unknown as { learningRate: number }
  const vars = [...model.federatedVariables, users]
  const embedding = model.federatedVariables[0] as tf.Variable
  const caseIndex = (): Map<number, Float32Array> => {
    const table = users.dataSync() as Float32Array
    return new Map(data.test.map((c) => [c.user, table.slice(c.user * dim, (c.user + 1) * dim)]))
  }
  const measure = async (): Promise<RankingQuality> => {
    const byUser = caseIndex()
    const scores = scoreCases(model, catalog, data.test, (c) => byUser.get(c.user) as Float32Array)
    let i = 0
    return evaluate(data.test, () => scores[i++] as Float32Array)
  }
  try {
    for (let epoch = 1; epoch <= options.epochs; epoch++) {
      adam.learningRate = options.learningRate * (options.learningRateDecay ?? 1) ** (epoch - 1)
      shuffle(positives, uniform)
      const per = 1 + options.negatives
      let total = 0
      let steps = 0
      for (let start = 0; start < positives.length; start += options.batchSize) {
        const chunk = positives.slice(start, start + options.batchSize)
        const n = chunk.length * per
        const userRows = new Int32Array(n)
        const itemRows = new Int32Array(n)
        const labels = new Float32Array(n)
        let r = 0
        for (const [user, item] of chunk) {
          userRows[r] = user
          itemRows[r] = item
          labels[r++] = 1
          const mine = rated[user] as Set<number>
          for (let k = 0; k < options.negatives; k++) {
            let negative = Math.floor(uniform() * data.items)
            while (mine.has(negative)) negative = Math.floor(uniform() * data.items)
            userRows[r] = user
            itemRows[r++] = negative
          }
        }
        const batch = selectRows(catalog, itemRows)
        const cost = optimizer.minimize(
          () => {
            const side = model.itemSide(itemTensors(batch))
            const u = lookupRows(users, tf.tensor1d(userRows, 'int32'))
            const s = tf.add(tf.sum(tf.mul(u, side.vectors), 1), side.prior)
            const y = tf.tensor1d(labels)
            const perRow = tf.add(tf.sub(tf.relu(s), tf.mul(s, y)), tf.log1p(tf.exp(tf.neg(tf.abs(s)))))
            const e = lookupRows(embedding, tf.tensor1d(batch.buckets, 'int32'))
            const penalty = tf.add(tf.mul(options.userL2, tf.mean(tf.sum(tf.square(u), 1))), tf.mul(options.itemL2, tf.mean(tf.sum(tf.square(e), 1))))
            return tf.add(tf.mean(perRow), penalty) as tf.Scalar
          },
          true,
          vars,
        )
        total += (cost?.dataSync()[0] ?? 0) as number
        cost?.dispose()
        steps++
      }
      const evalNow = options.evalEvery !== undefined && options.evalEvery > 0 && (epoch % options.evalEvery === 0 || epoch === options.epochs)
      options.onEpoch?.(epoch, total / Math.max(steps, 1), evalNow ? await measure() : null)
    }
    return { quality: await measure(), epochs: options.epochs, seconds: (performance.now() - started) / 1000, weights: await model.readFederated() }
  } finally {
    optimizer.dispose()
    users.dispose()
    model.dispose()
  }
}
