/**
 * What each privacy mode and each sampling scheme assumes, in plain words. These sentences are
 * part of the audit record: every DP round record, ledger entry and ledger export carries the
 * one that applied, so nobody reading a number has to guess whom it trusts.
 */
import type { PrivacyMode } from '../../protocol/messages.ts'
import type { SamplingConfig } from '../store/store.ts'

/** The trust assumption of each mode, plus `none` for rounds without differential privacy. */
export const TRUST_ASSUMPTIONS: Readonly<Record<PrivacyMode | 'none', string>> = {
  none:
    'No differential privacy: the aggregator sees every update in the clear, and published model versions carry no formal privacy guarantee.',
  central:
    'Central DP trusts the aggregator: it sees every clipped update and the exact, un-noised sum before it adds Gaussian noise. ' +
    'The (epsilon, delta) guarantee protects each user against anyone who sees the published model versions, ' +
    "not against the aggregator's operator or anyone who can read its memory.",
  distributed:
    'Distributed DP over secure aggregation: each device adds its own share of discrete noise before masking, so the aggregator only ever ' +
    'sees noised sums of groups of devices, never an update or an un-noised sum. It assumes honest devices run Hearth and add their share; ' +
    'devices that drop out or collude with the aggregator take their noise with them, which the accountant allows for by counting only the ' +
    'minimum number of honest shares a published sum must hold (rounds with fewer survivors are refused). The (epsilon, delta) guarantee ' +
    "then protects each user against the aggregator's operator as well as anyone who sees the published model versions; a modified device " +
    'is bounded only by the modulus.',
}

/** Central DP over secure aggregation: the aggregator sees sums only, and cannot check clipping. */
export const SECURE_CENTRAL_TRUST =
  'Central DP over secure aggregation: the aggregator never sees an individual update, only the exact, un-noised sum of each group ' +
  'of devices, before it adds Gaussian noise. It cannot check that a device clipped its update: the sensitivity the accountant uses ' +
  'holds for devices running Hearth; a modified device is bounded only by the quantization range. The (epsilon, delta) guarantee ' +
  "protects each user against anyone who sees the published model versions, not against the aggregator's operator."

/**
 * What the accountant assumes about who took part, for `sampling` (see `rounds/selection.ts`).
 */
export function samplingAssumption(sampling: SamplingConfig): string {
  switch (sampling.kind) {
    case 'uniform':
      return (
        'Cohorts are min(maxCohort, n) of the n sessions waiting at selection, drawn uniformly without replacement with a CSPRNG. ' +
        'The accountant claims no amplification by subsampling (q = 1): the waiting sessions are neither a fixed, known population ' +
        'nor hidden from the server, so every round is charged as if every user took part in it.'
      )
    case 'poisson':
      return (
        `Each session waiting at selection is selected independently with probability q = ${sampling.rate} (CSPRNG, exact Bernoulli), ` +
        'as the sampled Gaussian analysis assumes, and the accountant uses that q. This holds only if each user checks in as at most one ' +
        'session per model, and the amplification protects against those who see the published versions: the aggregator itself knows ' +
        'who was selected. The cohort is not capped at maxCohort, since a cap would break the independence the analysis needs.'
      )
  }
}
