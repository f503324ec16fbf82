import { pldEpsilon } from './pld-accountant';
import { rdpEpsilon } from './rdp-accountant';

/**
 * The accountants a model may name: 'rdp' (Rényi DP, integer and fractional orders, the Balle et al. 2020
 * conversion; milliseconds) and 'pld' (privacy loss distribution by FFT, both neighbour directions, every
 * discretisation error added to what it reports; tighter, and a second or more per evaluation).
 */
export const PRIVACY_ACCOUNTANTS = ['rdp', 'pld'] as const;
export type PrivacyAccountant = (typeof PRIVACY_ACCOUNTANTS)[number];

/** T steps of the Poisson-subsampled Gaussian mechanism: rate q, noise multiplier σ. */
export interface SubsampledGaussian {
  sampleRate: number;
  noiseMultiplier: number;
  steps: number;
}

/** The ε of the mechanism at δ by the named accountant (an upper bound: the mechanism is (ε, δ)-DP). */
export function accountEpsilon(accountant: PrivacyAccountant, mechanism: SubsampledGaussian, delta: number): number {
  switch (accountant) {
    case 'rdp':
      return rdpEpsilon(mechanism, delta).epsilon;
    case 'pld':
      return pldEpsilon(mechanism, delta);
  }
}
