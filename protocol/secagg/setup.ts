/**
 * One call from a round's requirements to a group's server configuration: derives k and t
 * (`params.ts`), the input limit that keeps the group sum from wrapping (`quantize.ts`), and
 * leaves the graph to be drawn by the server.
 */
import type { SecAggMode, SecurityRequirements } from './params.ts'
import { deriveParameters } from './params.ts'
import type { PrgAlgorithm } from './prg.ts'
import { inputLimit } from './quantize.ts'
import type { SecAggServerConfig } from './server.ts'
import type { SecAggStage } from './messages.ts'
import type { X25519Backend } from './keys.ts'

/** What the round engine knows when it forms a group. */
export interface GroupSetup extends SecurityRequirements {
  readonly roundId: number
  readonly groupId: number
  readonly mode: SecAggMode
  readonly vectorLength: number
  /** b, default 32. */
  readonly modulusBits?: number
  readonly prg?: PrgAlgorithm
  readonly consistencyCheck?: boolean
  readonly stageTimeoutsMs?: Partial<Record<SecAggStage, number>>
  readonly x25519?: X25519Backend | 'auto'
}

/** Derives a group's server configuration from its setup. */
export function configureGroup(setup: GroupSetup): SecAggServerConfig {
  const modulusBits = setup.modulusBits ?? 32
  const parameters = deriveParameters(setup.mode, setup)
  return {
    roundId: setup.roundId,
    groupId: setup.groupId,
    parameters,
    vectorLength: setup.vectorLength,
    modulusBits,
    maxInputValue: inputLimit(modulusBits, parameters.groupSize),
    ...(setup.prg === undefined ? {} : { prg: setup.prg }),
    ...(setup.consistencyCheck === undefined ? {} : { consistencyCheck: setup.consistencyCheck }),
    ...(setup.stageTimeoutsMs === undefined ? {} : { stageTimeoutsMs: setup.stageTimeoutsMs }),
    ...(setup.x25519 === undefined ? {} : { x25519: setup.x25519 }),
  }
}
