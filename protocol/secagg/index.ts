/**
 * Secure aggregation for Hearth: the server learns only the sum of the clients' quantized
 * updates, even when clients drop out (Bonawitz et al. CCS 2017; SecAgg+ of Bell et al. CCS
 * 2020). Pure TypeScript over WebCrypto and `@noble/*`: the same results in a page, a Worker
 * and Node.
 *
 * - `SecAggServer` / `SecAggClient`: the two halves, as state machines over the messages of
 *   `messages.ts` (JSON control messages plus one binary masked-input frame).
 * - `configureGroup` / `deriveParameters`: graph degree k and threshold t from the group size,
 *   expected dropout, tolerated corrupt fraction and stated probabilities.
 * - `quantize` / `dequantizeSum`: float updates into Z_{2^b} and back, without wrap-around.
 * - `splitIntoGroups` / `combineGroupSums`: large cohorts as groups of bounded size.
 * - `runLocalRound`: a whole group in one process, for tests, simulation and benchmarks.
 */
export { SecAggClient, ClientState, parsePlan } from './client.ts'
export type { SecAggClientOptions } from './client.ts'
export { SecAggServer, ServerState, DEFAULT_STAGE_TIMEOUTS_MS } from './server.ts'
export type { SecAggServerConfig, SecAggResult, StageCounts } from './server.ts'
export * from './messages.ts'
export { deriveParameters, SecAggMode, ServerModel, MAX_GROUP_SIZE } from './params.ts'
export type { SecAggParameters, SecurityRequirements } from './params.ts'
export { configureGroup } from './setup.ts'
export type { GroupSetup } from './setup.ts'
export { quantize, dequantizeSum, quantizationLevels, inputLimit, clipL2, secureUniform } from './quantize.ts'
export type { QuantizationParams, UniformSource } from './quantize.ts'
export { PrgAlgorithm, expandSeed } from './prg.ts'
export { buildGraph, completeGraph, hararyGraph } from './graph.ts'
export type { CommunicationGraph } from './graph.ts'
export { splitIntoGroups, combineGroupSums } from './groups.ts'
export type { GroupOutcome, GroupReport, CombinedSum } from './groups.ts'
export { runLocalRound } from './local-round.ts'
export type { DropoutPoint, LocalRoundOptions, LocalRoundReport } from './local-round.ts'
