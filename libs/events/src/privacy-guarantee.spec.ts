import { describePrivacyGuarantee } from './privacy-guarantee';
import { validateEvent } from './events';
import { modelPublishedEvent } from './testing/events';

describe('MODEL_PUBLISHED.privacy', () => {
  const privacy = { mechanism: 'dp-sgd' as const, epsilon: 1.98765, delta: 1e-5, noiseMultiplier: 1.1234567, sampleRate: 0.027777777777777783, steps: 720, clipNorm: 1, accountant: 'rdp' };
  const published = (p: unknown) => modelPublishedEvent({ privacy: p });

  it('reads as one line with every parameter', () => {
    expect(describePrivacyGuarantee(privacy)).toBe(
      '(ε 1.988, δ 0.00001)-DP by DP-SGD: noise multiplier σ 1.123, sample rate q 0.02778, 720 steps, clip norm 1; accountant rdp',
    );
  });

  it('is checked when present, naming the field', () => {
    expect(() => validateEvent(published(privacy))).not.toThrow();
    const { privacy: _, ...without } = published(privacy);
    expect(() => validateEvent(without)).not.toThrow();
    for (const [bad, field] of [
      [{ mechanism: 'laplace' }, 'privacy.mechanism'],
      [{ epsilon: 0 }, 'privacy.epsilon'],
      [{ delta: 1 }, 'privacy.delta'],
      [{ sampleRate: 1.5 }, 'privacy.sampleRate'],
      [{ steps: 2.5 }, 'privacy.steps'],
      [{ clipNorm: -1 }, 'privacy.clipNorm'],
      [{ accountant: '' }, 'privacy.accountant'],
    ] as const) {
      expect(() => validateEvent(published({ ...privacy, ...bad }))).toThrow(expect.objectContaining({ field }));
    }
    expect(() => validateEvent(published('dp'))).toThrow(/privacy must be an object/);
  });
});
