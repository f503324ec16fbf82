import type { PrivacyGuarantee } from './events';

/**
 * One line an auditor reads, e.g. "(ε 2.98, δ 1e-5)-DP by DP-SGD: noise multiplier σ 1.12, sample rate q 0.0278,
 * 720 steps, clip norm 1; accountant rdp". Numbers keep 4 significant digits (the entry holds them exactly).
 */
export function describePrivacyGuarantee(privacy: PrivacyGuarantee): string {
  const n = (value: number) => Number(value.toPrecision(4)).toString();
  return (
    `(ε ${n(privacy.epsilon)}, δ ${n(privacy.delta)})-DP by DP-SGD: noise multiplier σ ${n(privacy.noiseMultiplier)}, ` +
    `sample rate q ${n(privacy.sampleRate)}, ${privacy.steps} steps, clip norm ${n(privacy.clipNorm)}; accountant ${privacy.accountant}`
  );
}
