/**
 * Differential-privacy benchmark: the accountant's cost (must be cheap enough to call per
 * request) and the cost of distributed-DP noise for one client (m = 10^5 coordinates).
 *
 *   npx tsx bench/dp.ts
 *
 * Figures are kept in bench/RESULTS.md, section "Differential privacy".
 */
import os from 'node:os'
import {
  DEFAULT_RDP_ORDERS,
  DiscreteGaussianSampler,
  RandomBits,
  RdpAccountant,
  SkellamSampler,
  cryptoRandomSource,
  eventRdp,
  gridGaussianNoise,
  noiseMultiplierForEpsilon,
  planDistributedDp,
  sampleContinuousGaussian,
  sampledGaussianRdp,
  type PrivacyEvent,
} from '../protocol/dp/index.ts'

const rows: [string, string, string][] = []

function time<T>(label: string, detail: string, fn: () => T, repeats = 1): T {
  let result: T | undefined
  const start = performance.now()
  for (let i = 0; i < repeats; i++) result = fn()
  const ms = (performance.now() - start) / repeats
  rows.push([label, detail, ms >= 100 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 1 ? 3 : 1)} ms`])
  return result as T
}

// Warm the JIT once so the "cold curve" rows measure the math, not compilation.
sampledGaussianRdp(0.3, 1.7, DEFAULT_RDP_ORDERS)

// --- Accountant ---
for (const [q, z] of [[0.01, 1.1], [0.001, 1.0], [0.1, 2.0], [0.5, 0.8]] as const) {
  time('RDP curve, 156 orders (uncached)', `q=${q} z=${z}`, () => sampledGaussianRdp(q, z, DEFAULT_RDP_ORDERS))
}
const event: PrivacyEvent = { kind: 'sampled-gaussian', samplingRate: 0.0123, noiseMultiplier: 1.234 }
time('10,000 rounds: compose(event, 10000) + epsilon, cold cache', 'q=0.0123 z=1.234', () => new RdpAccountant().compose(event, 10_000).epsilon(1e-5))
time('10,000 rounds: compose(event, 10000) + epsilon, cached', 'q=0.0123 z=1.234', () => new RdpAccountant().compose(event, 10_000).epsilon(1e-5), 100)
const ledger: PrivacyEvent[] = Array.from({ length: 10_000 }, (_, i) => ({ kind: 'sampled-gaussian', samplingRate: 0.01 * (1 + (i % 10)), noiseMultiplier: 1.1 }))
time('ledger replay: 10,000 x compose(event, 1), 10 distinct events', 'q=0.01..0.1 z=1.1', () => {
  const acc = new RdpAccountant()
  for (const e of ledger) acc.compose(e)
  return acc.epsilon(1e-5)
})
time('inverse: noise multiplier for (eps, delta), tol 1e-6', 'q=0.01 T=10000 eps=3 delta=1e-5', () =>
  noiseMultiplierForEpsilon({ samplingRate: 0.01, rounds: 10_000, epsilon: 3, delta: 1e-5 }),
)
const ddgPlan = planDistributedDp({ mechanism: 'discrete-gaussian', bits: 20, maxClients: 100, noisyClients: 80, clipNorm: 1, dim: 100_000, noiseMultiplier: 1 })
time('distributed DG event RDP curve (ZW19 + KLS21)', 'bits=20 n=100', () =>
  eventRdp({ kind: 'sampled-distributed-discrete-gaussian', samplingRate: 0.01, l2Sensitivity: ddgPlan.l2Sensitivity, localSigma: ddgPlan.localSigma, noisyClients: 80, dim: 100_000 }),
)

// --- Noise for one client, m = 10^5 coordinates, CSPRNG ---
const m = 100_000
const random = new RandomBits(cryptoRandomSource())
const out = new Float64Array(m)
const sigmaPlan = ddgPlan.localSigma
for (const sigma of [4, sigmaPlan, 1e5]) {
  const sampler = new DiscreteGaussianSampler(sigma * sigma)
  time('discrete Gaussian (CKS20, exact), m = 10^5', `sigma=${sigma.toPrecision(4)}`, () => sampler.sampleInto(random, out))
}
for (const variance of [16, sigmaPlan * sigmaPlan, 1e8]) {
  const sampler = new SkellamSampler(variance)
  time('Skellam (exact Poisson pair), m = 10^5', `variance=${variance.toPrecision(4)}`, () => sampler.sampleInto(random, out))
}
const values = new Float64Array(m)
time('central: grid discrete Gaussian, m = 10^5', 'sigma=1 grid 2^-20', () => gridGaussianNoise(random, values, 1, 20))
time('continuous Gaussian (simulation only), m = 10^5', 'sigma=1', () => {
  for (let i = 0; i < m; i++) out[i] = sampleContinuousGaussian(random, 1)
})

const header = ['what', 'parameters', 'time'] as const
const width = header.map((title, c) => Math.max(title.length, ...rows.map((r) => (r[c] ?? '').length)))
const line = (r: readonly string[]): string => `| ${r.map((cell, c) => cell.padEnd(width[c]!)).join(' | ')} |`
console.log(`Differential privacy benchmark — ${new Date().toISOString().slice(0, 10)}, node ${process.version}, ${os.cpus()[0]?.model ?? 'unknown CPU'} (${os.cpus().length} cores)`)
console.log(`distributed plan used: bits=20, n=100 (80 noisy), C=1, d=1e5, z=1 -> scale ${ddgPlan.scale.toPrecision(5)}, local sigma ${sigmaPlan.toPrecision(5)}`)
console.log(line(['what', 'parameters', 'time']))
console.log(line(width.map((w) => '-'.repeat(w))))
for (const r of rows) console.log(line(r))
