/**
 * Data of the quality benchmark, as the NCF protocol of He et al. (WWW 2017, §4.1) uses it:
 * implicit feedback (every rating is an interaction), leave-one-out (each user's latest
 * interaction is the test item) and, per user, 99 items the user never interacted with, ranked
 * together with the test item.
 *
 * Two sources:
 * - `loadMovieLens(dir)`: MovieLens 100K's `u.data` (Harper & Konstan 2015), split here: the
 *   latest interaction by timestamp (the last one in file order among equal timestamps) is held
 *   out, and 99 negatives are drawn uniformly without replacement from the items the user never
 *   rated, with a seeded generator (same seed, same split). `u.item` genres become item features.
 * - `loadNcf(dir)`: a split already made, as NCF's files: `train.rating` and `test.rating`
 *   (`user\titem\trating\ttimestamp`, 0-based ids) and `test.negative` (`(user,item)` then 99
 *   item ids, tab separated).
 *
 * Item ids reach the model as strings (`String(id)`), hashed like any app's ids.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { ItemFeatures } from '../protocol/features.ts'
import { seededUniform } from '../worker/model/random.ts'

/** One held-out test case: the test item and the 99 negatives it is ranked against. */
export interface TestCase {
  readonly user: number
  readonly item: number
  readonly negatives: Int32Array
}

export interface QualityDataset {
  readonly name: string
  readonly users: number
  readonly items: number
  /** Per user, the training items, oldest first (time order). */
  readonly train: readonly Int32Array[]
  /** One test case per user that has one. */
  readonly test: readonly TestCase[]
  /** Per item, its features (MovieLens genres), or null when the source has none. */
  readonly features: readonly (ItemFeatures | undefined)[] | null
  /** Training interactions in all. */
  readonly interactions: number
}

/** Item index → the id string the model hashes. */
export const itemId = (item: number): string => String(item)

const NEGATIVES = 99

function lines(text: string): string[] {
  return text.split('\n').filter((line) => line.trim().length > 0)
}

function integer(value: string | undefined, where: string): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`${where}: expected a non-negative integer, got ${JSON.stringify(value)}`)
  return n
}

/** MovieLens genres of `u.item`/`u.genre` as `{ genre: [...] }` features, by 0-based item index. */
async function movieLensGenres(dir: string, items: number): Promise<(ItemFeatures | undefined)[]> {
  const names = lines(await readFile(join(dir, 'u.genre'), 'latin1')).map((line) => line.split('|')[0] as string)
  const out = new Array<ItemFeatures | undefined>(items).fill(undefined)
  for (const line of lines(await readFile(join(dir, 'u.item'), 'latin1'))) {
    const fields = line.split('|')
    const item = integer(fields[0], 'u.item') - 1
    const flags = fields.slice(-names.length)
    const genres = names.filter((_, g) => flags[g] === '1')
    if (item >= 0 && item < items && genres.length > 0) out[item] = { genre: genres }
  }
  return out
}

/** MovieLens 100K from `dir` (`u.data`, `u.item`, `u.genre`), split as the module comment says. */
export async function loadMovieLens(dir: string, seed = 1): Promise<QualityDataset> {
  const rows = lines(await readFile(join(dir, 'u.data'), 'latin1')).map((line, order) => {
    const [user, item, , at] = line.split('\t')
    return { user: integer(user, 'u.data user') - 1, item: integer(item, 'u.data item') - 1, at: integer(at, 'u.data timestamp'), order }
  })
  const users = Math.max(...rows.map((r) => r.user)) + 1
  const items = Math.max(...rows.map((r) => r.item)) + 1
  const byUser = Array.from({ length: users }, () => [] as typeof rows)
  for (const row of rows) byUser[row.user]?.push(row)
  const uniform = seededUniform(seed)
  const train: Int32Array[] = []
  const test: TestCase[] = []
  let interactions = 0
  byUser.forEach((history, user) => {
    history.sort((a, b) => a.at - b.at || a.order - b.order)
    const held = history.at(-1)
    const rest = history.slice(0, -1)
    train.push(Int32Array.from(rest, (r) => r.item))
    interactions += rest.length
    if (held === undefined) return
    const rated = new Set(history.map((r) => r.item))
    const pool: number[] = []
    for (let item = 0; item < items; item++) if (!rated.has(item)) pool.push(item)
    // Partial Fisher–Yates: the first 99 of a uniform shuffle are a uniform sample without replacement.
    for (let i = 0; i < NEGATIVES && i < pool.length; i++) {
      const j = i + Math.floor(uniform() * (pool.length - i))
      ;[pool[i], pool[j]] = [pool[j] as number, pool[i] as number]
    }
    test.push({ user, item: held.item, negatives: Int32Array.from(pool.slice(0, NEGATIVES)) })
  })
  return { name: 'MovieLens 100K', users, items, train, test, features: await movieLensGenres(dir, items), interactions }
}

/** An NCF-format split from `dir` (`train.rating`, `test.rating`, `test.negative`). */
export async function loadNcf(dir: string): Promise<QualityDataset> {
  const [trainText, testText, negativeText] = await Promise.all(['train.rating', 'test.rating', 'test.negative'].map((file) => readFile(join(dir, file), 'utf8')))
  const parse = (text: string, file: string): { user: number; item: number; at: number }[] =>
    lines(text as string).map((line, i) => {
      const [user, item, , at] = line.split('\t')
      return { user: integer(user, `${file}:${i + 1}`), item: integer(item, `${file}:${i + 1}`), at: Number(at ?? 0) }
    })
  const trainRows = parse(trainText as string, 'train.rating')
  const testRows = parse(testText as string, 'test.rating')
  const negatives = new Map<number, { item: number; negatives: Int32Array }>()
  lines(negativeText as string).forEach((line, i) => {
    const [head, ...rest] = line.split('\t')
    const match = /^\((\d+),(\d+)\)$/.exec(head ?? '')
    if (match === null) throw new RangeError(`test.negative:${i + 1}: expected "(user,item)" first, got ${JSON.stringify(head)}`)
    negatives.set(Number(match[1]), { item: Number(match[2]), negatives: Int32Array.from(rest.filter((x) => x.trim() !== ''), (x) => integer(x, `test.negative:${i + 1}`)) })
  })
  let users = 0
  let items = 0
  for (const r of [...trainRows, ...testRows]) {
    users = Math.max(users, r.user + 1)
    items = Math.max(items, r.item + 1)
  }
  for (const { item, negatives: negs } of negatives.values()) for (const x of [item, ...negs]) items = Math.max(items, x + 1)
  const byUser = Array.from({ length: users }, () => [] as { item: number; at: number; order: number }[])
  trainRows.forEach((r, order) => byUser[r.user]?.push({ item: r.item, at: r.at, order }))
  const train = byUser.map((history) => Int32Array.from(history.sort((a, b) => a.at - b.at || a.order - b.order), (r) => r.item))
  const test: TestCase[] = testRows.map((r) => {
    const case_ = negatives.get(r.user)
    if (case_ === undefined || case_.item !== r.item) throw new RangeError(`test.negative has no line (${r.user},${r.item})`)
    return { user: r.user, item: r.item, negatives: case_.negatives }
  })
  return { name: `NCF split (${dir})`, users, items, train, test, features: null, interactions: trainRows.length }
}

/**
 * The first `users` users of `data` with their training data and test cases: a smaller,
 * cheaper benchmark for tuning runs (its figures are not comparable with the full set's).
 */
export function firstUsers(data: QualityDataset, users: number): QualityDataset {
  if (users >= data.users) return data
  const train = data.train.slice(0, users)
  return {
    ...data,
    name: `${data.name}, first ${users} users`,
    users,
    train,
    test: data.test.filter((c) => c.user < users),
    interactions: train.reduce((n, history) => n + history.length, 0),
  }
}
