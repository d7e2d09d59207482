/**
 * SIGKILL at every stage of a secure-aggregation round with central DP (issue 6, item 6): a real
 * aggregator process on a real SQLite file, real sockets on 127.0.0.1, devices that run the
 * client protocol for real (`secagg-device.ts`) and know every secret they held.
 *
 * Each case publishes one round first (version 2 and a ledger entry to protect), drives the next
 * round to one stage — the stalled device keeps the stage open, the others' messages are
 * confirmed taken in — and kills the process. A restart on the same directory must then find
 * the round aborted with the restart reason (or, killed just after the publish, published once),
 * exactly the versions and ledger entries committed before the kill, a next round that publishes,
 * and no device's secret anywhere under the data directory (SQLite's -wal and -shm included).
 * One case runs on PostgreSQL, whose tables are scanned instead (its files belong to the server).
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import pg from 'pg'
import type { PoolConfig } from 'pg'
import { beforeEach, describe, expect, test } from 'vitest'
import type { TestContext } from 'vitest'
import { RESTART_REASON } from '../../aggregator/app.ts'
import { parseRoundDocument } from '../../aggregator/config/round-document.ts'
import { roundOptionsFromDocument } from '../../aggregator/config/round-options.ts'
import type { AggregatorOptions } from '../../aggregator/options.ts'
import type { LedgerEntry, ModelVersionSummary, RoundRecord } from '../../aggregator/store/store.ts'
import { ROUTES } from '../../protocol/messages.ts'
import { APP_KEY, eventually, getJson, listen, spawnAggregator, tempDir, TINY, TINY_LENGTH } from './helpers.ts'
import type { ChildAggregator } from './helpers.ts'
import { freshSchema, PG_SKIP_REASON, PG_URL } from './pg.ts'
import { DeviceStep, SecAggTestDevice } from './secagg-device.ts'
import type { DeviceSecret } from './secagg-device.ts'

const TINY_ARG = `${TINY.name}:${TINY.mf.buckets}x${TINY.mf.dim}`
const COHORT = 4
// Long enough that no deadline passes while a case holds a stage open; the stages close early
// because every device answers (or, at the stage under test, because the process dies).
const STAGE_MS = 60_000

/**
 * The round document both processes run: secure aggregation on the complete graph with the
 * consistency check (so every stage exists), central DP with a budget that no case can exhaust.
 * A round opens with 3 devices and selects as soon as 4 wait.
 */
const ROUNDS_DOCUMENT = {
  version: 1,
  model: TINY.name,
  cohort: { target: COHORT, minimum: 3 },
  deadlines: {
    selectionMs: STAGE_MS,
    trainingMs: STAGE_MS,
    // Between rounds the test closes the old devices: gone well before the next round may open.
    pauseMs: 1_500,
    secaggStagesMs: { 'advertise-keys': STAGE_MS, 'share-keys': STAGE_MS, 'masked-input-collection': STAGE_MS, 'consistency-check': STAGE_MS, unmasking: STAGE_MS },
  },
  aggregation: { mode: 'secagg', variant: 'secagg', consistencyCheck: true },
  privacy: { mode: 'central', clipNorm: 0.5, noiseMultiplier: 1, budget: { epsilon: 1e6, delta: 1e-6 } },
}

/** Every message a device sends in a round, in order. */
const STEPS: readonly DeviceStep[] = [
  DeviceStep.AdvertiseKeys,
  DeviceStep.ShareKeys,
  DeviceStep.MaskedInput,
  DeviceStep.ConsistencySignature,
  DeviceStep.UnmaskShares,
]

/**
 * Where the process dies: in selection (three devices wait for a fourth), inside a secure stage
 * (all but one device answered it, the last one stalls), or right after the publish committed.
 */
type KillPoint = { readonly kind: 'selection' } | { readonly kind: 'stage'; readonly step: DeviceStep } | { readonly kind: 'published' }

const KILL_POINTS: readonly { readonly name: string; readonly at: KillPoint }[] = [
  { name: 'selection (devices checked in, cohort not drawn)', at: { kind: 'selection' } },
  { name: 'AdvertiseKeys', at: { kind: 'stage', step: DeviceStep.AdvertiseKeys } },
  { name: 'ShareKeys', at: { kind: 'stage', step: DeviceStep.ShareKeys } },
  { name: 'MaskedInputCollection (masked inputs summed in memory)', at: { kind: 'stage', step: DeviceStep.MaskedInput } },
  { name: 'ConsistencyCheck', at: { kind: 'stage', step: DeviceStep.ConsistencySignature } },
  { name: 'Unmasking (shares revealed)', at: { kind: 'stage', step: DeviceStep.UnmaskShares } },
  { name: 'just after the publish (version and ledger entry committed)', at: { kind: 'published' } },
]

/** What a case must undo when it ends, pass or fail: cases run concurrently, so each keeps its own. */
type Cleanups = (() => unknown)[]

function cleanupsOf(context: TestContext): Cleanups {
  const cleanups: Cleanups = []
  context.onTestFinished(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })
  return cleanups
}

/** Devices of one round; closed at the end of the test whatever happens. */
async function connectDevices(cleanups: Cleanups, wsUrl: string, count: number, label: string): Promise<SecAggTestDevice[]> {
  const devices: SecAggTestDevice[] = []
  cleanups.push(() => devices.forEach((d) => d.close()))
  for (let i = 0; i < count; i++) devices.push(await SecAggTestDevice.checkedIn(wsUrl, `${label} device ${i + 1}`, TINY.name, TINY_LENGTH))
  return devices
}

/** Closes `devices` and waits until their sockets are closed, so the next round cannot draw them. */
async function leave(devices: readonly SecAggTestDevice[]): Promise<void> {
  for (const device of devices) device.close()
  await Promise.all(devices.map((d) => d.client.closed))
}

/** Runs a whole round with `COHORT` fresh devices; resolves with them once it published. */
async function publishRound(cleanups: Cleanups, wsUrl: string, label: string): Promise<{ devices: SecAggTestDevice[]; roundId: number; version: number }> {
  const devices = await connectDevices(cleanups, wsUrl, COHORT, label)
  await Promise.all(devices.map((d) => d.joinRound()))
  for (const step of STEPS) await Promise.all(devices.map((d) => d.send(step)))
  const results = await Promise.all(devices.map((d) => d.result()))
  for (const result of results) expect(result, result.reason).toMatchObject({ outcome: 'published' })
  return { devices, roundId: devices[0]!.roundId, version: results[0]!.version as number }
}

/** What must survive a crash byte for byte: every version (with its weights) and the ledger. */
interface Committed {
  readonly versions: readonly { readonly summary: ModelVersionSummary; readonly weights: string }[]
  readonly ledger: readonly LedgerEntry[]
}

async function committed(url: string): Promise<Committed> {
  const { body } = await getJson<{ versions: ModelVersionSummary[] }>(url, `/admin/models/${TINY.name}/versions?limit=100`)
  const versions = await Promise.all(
    body.versions.map(async (summary) => {
      const response = await fetch(url + ROUTES.modelVersion(TINY.name, summary.version))
      return { summary, weights: Buffer.from(await response.arrayBuffer()).toString('base64') }
    }),
  )
  const { body: ledger } = await getJson<{ entries: LedgerEntry[] }>(url, `/admin/models/${TINY.name}/ledger`)
  return { versions, ledger: ledger.entries }
}

async function rounds(url: string): Promise<RoundRecord[]> {
  return (await getJson<{ rounds: RoundRecord[] }>(url, `/admin/rounds?model=${TINY.name}&limit=100`)).body.rounds
}

/** Where a secret was found: the file (or table), whose secret, and in which encoding. */
interface Finding {
  readonly place: string
  readonly secret: string
  readonly encoding: string
}

/** Something a store keeps — a file, a table's rows as text — by name. */
interface Stored {
  readonly name: string
  readonly bytes: Buffer
}

/**
 * Each way a secret could be written: raw (a BLOB), base64 (inside JSON, as on the wire), hex
 * (PostgreSQL's bytea text, debug output), and either half of the raw bytes — a BLOB that spills
 * into SQLite overflow pages is cut by 4-byte page links, which leaves one half whole.
 */
function encodings(bytes: Uint8Array): [string, Buffer][] {
  const raw = Buffer.from(bytes)
  const out: [string, Buffer][] = [
    ['raw', raw],
    ['base64', Buffer.from(raw.toString('base64'))],
    ['hex', Buffer.from(raw.toString('hex'))],
  ]
  // Halves of 16 bytes and more are still far too random to occur by chance.
  if (raw.length >= 32) out.push(['first half', raw.subarray(0, raw.length >> 1)], ['second half', raw.subarray(raw.length >> 1)])
  return out
}

/** Looks for every encoding of every secret in everything stored. */
function findSecrets(stored: readonly Stored[], secrets: readonly DeviceSecret[]): Finding[] {
  const patterns = secrets.flatMap((secret) => encodings(secret.bytes).map(([encoding, bytes]) => ({ secret: secret.label, encoding, bytes })))
  const findings: Finding[] = []
  for (const { name, bytes } of stored) {
    for (const p of patterns) if (bytes.includes(p.bytes)) findings.push({ place: name, secret: p.secret, encoding: p.encoding })
  }
  return findings
}

/** Every file under `dir`, named by its path below it. */
function filesUnder(dir: string): Stored[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => {
      const path = join(entry.parentPath, entry.name)
      return { name: relative(dir, path), bytes: readFileSync(path) }
    })
}

/** Every row of every table in the schema `config` searches, as PostgreSQL's text (bytea in hex). */
async function tablesIn(config: PoolConfig): Promise<Stored[]> {
  const client = new pg.Client(config)
  await client.connect()
  try {
    const tables = await client.query<{ name: string }>(`SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema()`)
    const stored: Stored[] = []
    for (const { name } of tables.rows) {
      const rows = await client.query<{ row: string }>(`SELECT t::text AS row FROM ${client.escapeIdentifier(name)} t`)
      stored.push({ name, bytes: Buffer.from(rows.rows.map((r) => r.row).join('\n')) })
    }
    return stored
  } finally {
    await client.end()
  }
}

/** The store a case runs on: how the CLI and `buildApp` name it, and how to read all it keeps. */
interface StoreUnderTest {
  readonly args: readonly string[]
  readonly options: AggregatorOptions
  /** What the scan must have read after the kill: where the state lives (for SQLite, its log too). */
  readonly afterKill: readonly string[]
  /** What the scan must have read after a clean close. */
  readonly afterClose: readonly string[]
  contents(): Promise<Stored[]>
}

async function sqliteStore(cleanups: Cleanups): Promise<StoreUnderTest> {
  const temp = tempDir()
  cleanups.push(temp.remove)
  const dataDir = join(temp.path, 'data')
  mkdirSync(dataDir)
  return {
    args: ['--data-dir', dataDir],
    options: { dataDir },
    // A killed process leaves the write-ahead log and its index behind; a clean close folds them in.
    afterKill: ['aggregator.db', 'aggregator.db-wal', 'aggregator.db-shm'],
    afterClose: ['aggregator.db'],
    contents: async () => filesUnder(dataDir),
  }
}

async function postgresStore(cleanups: Cleanups): Promise<StoreUnderTest> {
  const schema = await freshSchema()
  cleanups.push(schema.drop)
  const tables = ['rounds', 'model_versions', 'privacy_ledger', 'audit_log']
  return { args: ['--postgres', schema.url], options: { store: { postgres: schema.url } }, afterKill: tables, afterClose: tables, contents: () => tablesIn(schema.config) }
}

/** Asserts the scan read at least `places` of the store, and found none of `secrets` anywhere. */
async function expectNothingPrivate(store: StoreUnderTest, places: readonly string[], secrets: readonly DeviceSecret[]): Promise<void> {
  const stored = await store.contents()
  expect(stored.map((s) => s.name)).toEqual(expect.arrayContaining([...places]))
  expect(findSecrets(stored, secrets)).toEqual([])
}

function roundDocumentFile(dir: string): string {
  const file = join(dir, 'rounds.json')
  writeFileSync(file, JSON.stringify(ROUNDS_DOCUMENT))
  return file
}

/** The options the restarted aggregator runs with: the same store and document, embedded. */
function restartOptions(store: StoreUnderTest): AggregatorOptions {
  return { ...store.options, rounds: roundOptionsFromDocument(parseRoundDocument(ROUNDS_DOCUMENT)) }
}

// A child's start-up is most of a case and CPU-heavy (TypeScript compiled as it loads): cases
// run concurrently, but at most two children start at once, so none starves the others.
const START_SLOTS = 2
let freeStartSlots = START_SLOTS
const waitingForSlot: (() => void)[] = []

async function inStartSlot<T>(start: () => Promise<T>): Promise<T> {
  if (freeStartSlots > 0) freeStartSlots--
  else await new Promise<void>((resolve) => waitingForSlot.push(resolve))
  try {
    return await start()
  } finally {
    // Hand the slot straight to the next waiter, or give it back.
    const next = waitingForSlot.shift()
    if (next === undefined) freeStartSlots++
    else next()
  }
}

async function spawnOn(cleanups: Cleanups, store: StoreUnderTest, configFile: string): Promise<ChildAggregator> {
  const args = ['--port', '0', ...store.args, '--app-key', APP_KEY, '--model', TINY_ARG, '--config', configFile]
  const child = await inStartSlot(() => spawnAggregator(args, 120_000))
  cleanups.push(() => {
    if (child.child.exitCode === null && child.child.signalCode === null) child.child.kill('SIGKILL')
  })
  return child
}

/**
 * Drives a second round to `at` on `child`, so that the aggregator holds what that point holds
 * only in memory; returns the devices (their secrets) and the round's id.
 */
async function driveTo(cleanups: Cleanups, child: ChildAggregator, at: KillPoint, after: number): Promise<{ devices: SecAggTestDevice[]; roundId: number }> {
  if (at.kind === 'selection') {
    // Three of four: the round opens and waits out its selection window for a fourth.
    const devices = await connectDevices(cleanups, child.wsUrl, COHORT - 1, 'round 2')
    let open: RoundRecord | undefined
    await eventually(
      async () => {
        open = (await rounds(child.url)).find((r) => r.id > after)
        return open !== undefined
      },
      20_000,
      'the second round to open',
    )
    expect(open).toMatchObject({ stage: 'selection', outcome: null, participants: 0 })
    return { devices, roundId: (open as RoundRecord).id }
  }
  if (at.kind === 'published') {
    const { devices, roundId } = await publishRound(cleanups, child.wsUrl, 'round 2')
    return { devices, roundId }
  }
  const devices = await connectDevices(cleanups, child.wsUrl, COHORT, 'round 2')
  await Promise.all(devices.map((d) => d.joinRound()))
  const answering = devices.slice(0, -1)
  for (const step of STEPS) {
    if (step === at.step) {
      // The last device stalls, which holds the stage open; the others' answers are in memory.
      await Promise.all(answering.map((d) => d.send(step)))
      await Promise.all(answering.map((d) => d.confirmLast()))
      break
    }
    await Promise.all(devices.map((d) => d.send(step)))
  }
  const record = (await rounds(child.url)).find((r) => r.id === devices[0]!.roundId)
  expect(record).toMatchObject({ stage: 'training', outcome: null, participants: COHORT })
  return { devices, roundId: devices[0]!.roundId }
}

/**
 * One case: a published round, a second round driven to `at`, SIGKILL, a restart on the same
 * store, and every check of the module comment.
 */
async function killAtAndRestart(cleanups: Cleanups, store: StoreUnderTest, at: KillPoint): Promise<void> {
  const temp = tempDir()
  cleanups.push(temp.remove)
  const child = await spawnOn(cleanups, store, roundDocumentFile(temp.path))

  const first = await publishRound(cleanups, child.wsUrl, 'round 1')
  expect(first.version).toBe(2)
  // Every kind of secret is looked for: 3 keys, the seed, an envelope and two shares per peer,
  // the upload, its quantization and its masked form.
  expect(first.devices[0]!.secrets).toHaveLength(4 + 3 * (COHORT - 1) + 3)
  await leave(first.devices)
  const second = await driveTo(cleanups, child, at, first.roundId)
  const before = await committed(child.url)
  child.child.kill('SIGKILL')
  expect((await child.exited).signal).toBe('SIGKILL')
  const secrets = [...first.devices, ...second.devices].flatMap((d) => d.secrets)
  // What the crash left, before anything could tidy it up.
  await expectNothingPrivate(store, store.afterKill, secrets)

  const restarted = await listen(restartOptions(store))
  cleanups.push(() => restarted.close())
  const record = (await getJson<RoundRecord>(restarted.url, `/admin/rounds/${second.roundId}`)).body
  const published = at.kind === 'published'
  if (published) expect(record).toMatchObject({ stage: 'done', outcome: 'published', publishedVersion: 3 })
  else expect(record).toMatchObject({ stage: 'done', outcome: 'aborted', reason: RESTART_REASON, publishedVersion: null })
  // Exactly what was committed before the kill: nothing lost, nothing duplicated or added.
  const after = await committed(restarted.url)
  expect(after).toEqual(before)
  expect(after.versions.map((v) => v.summary.version)).toEqual(published ? [3, 2, 1] : [2, 1])
  expect(after.ledger.map((e) => e.roundId)).toEqual(published ? [first.roundId, second.roundId] : [first.roundId])
  expect((await rounds(restarted.url)).filter((r) => r.outcome === 'published').map((r) => r.id)).toEqual(
    published ? [second.roundId, first.roundId] : [first.roundId],
  )

  // Rounds go on from the latest version, and their ledger entries follow the old ones.
  await leave(second.devices)
  const third = await publishRound(cleanups, restarted.wsUrl, 'round 3')
  expect(third.roundId).toBeGreaterThan(second.roundId)
  expect(third.version).toBe(published ? 4 : 3)
  const final = await committed(restarted.url)
  expect(final.versions.slice(1)).toEqual(after.versions)
  expect(final.ledger.slice(0, -1)).toEqual(after.ledger)
  expect(final.ledger.at(-1)).toMatchObject({ roundId: third.roundId, version: third.version })
  await leave(third.devices)
  await restarted.close()
  await expectNothingPrivate(store, store.afterClose, [...secrets, ...third.devices.flatMap((d) => d.secrets)])
}

describe('SIGKILL at each stage of a secure round with central DP (SQLite)', () => {
  // Concurrent: most of a case is the child's start-up, which overlaps well with the others' rounds.
  test.concurrent.for(KILL_POINTS)('killed in $name: restart keeps what was committed, writes nothing private, and rounds go on', { timeout: 240_000 }, async ({ at }, context) => {
    const cleanups = cleanupsOf(context)
    await killAtAndRestart(cleanups, await sqliteStore(cleanups), at)
  })

  test('the scan finds a secret in each encoding, also split across SQLite pages', (context) => {
    const cleanups = cleanupsOf(context)
    const temp = tempDir()
    cleanups.push(temp.remove)
    const secret: DeviceSecret = { label: 'planted', bytes: Uint8Array.from({ length: 48 }, (_, i) => (i * 37 + 11) & 0xff) }
    const raw = Buffer.from(secret.bytes)
    writeFileSync(join(temp.path, 'aggregator.db'), Buffer.alloc(4096))
    expect(findSecrets(filesUnder(temp.path), [secret])).toEqual([])
    // A BLOB cut by an overflow-page link, JSON with base64, bytea text with hex.
    writeFileSync(join(temp.path, 'aggregator.db-wal'), Buffer.concat([Buffer.alloc(100), raw.subarray(0, 20), Buffer.from([0, 0, 0, 7]), raw.subarray(20)]))
    writeFileSync(join(temp.path, 'aggregator.db-shm'), `{"key":"${raw.toString('base64')}"}`)
    mkdirSync(join(temp.path, 'nested'))
    writeFileSync(join(temp.path, 'nested', 'dump.txt'), `\\x${raw.toString('hex')}`)
    const found = findSecrets(filesUnder(temp.path), [secret]).map((f) => `${f.place}: ${f.encoding}`)
    expect(found.sort()).toEqual(['aggregator.db-shm: base64', 'aggregator.db-wal: second half', `${join('nested', 'dump.txt')}: hex`])
  })
})

describe('SIGKILL in a secure round on PostgreSQL', () => {
  beforeEach((context) => {
    if (PG_URL === undefined) context.skip(PG_SKIP_REASON)
  })

  // One stage, the one holding the most in memory: the store is what differs, not the protocol.
  test('killed in MaskedInputCollection: restart keeps what was committed, no table holds a secret, and rounds go on', { timeout: 240_000 }, async (context) => {
    const cleanups = cleanupsOf(context)
    await killAtAndRestart(cleanups, await postgresStore(cleanups), { kind: 'stage', step: DeviceStep.MaskedInput })
  })
})
