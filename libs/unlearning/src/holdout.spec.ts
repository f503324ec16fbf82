import { createHash } from 'node:crypto';
import { UnlearningError } from './errors';
import { computeHoldoutPoint, isHeldOut, splitHoldout } from './holdout';
import { loadIris } from './datasets';

/** The rule written out plainly: the first 6 bytes of SHA-256 as a hex number / 2^48. */
function referencePoint(seed: string, externalId: string): number {
  const hex = createHash('sha256').update(`lethe-holdout|${seed}\u0000${externalId}`, 'utf8').digest('hex');
  return parseInt(hex.slice(0, 12), 16) / 2 ** 48;
}

const ids = (n: number, prefix = 'id') =>
  Array.from({ length: n }, (_, i) => ({ externalId: `${prefix}-${i}`, features: [i], label: i % 2 }));

describe('holdout', () => {
  it('computes the point as the first 6 bytes of SHA-256("lethe-holdout|" seed 0x00 externalId) / 2^48', () => {
    for (const { externalId } of ids(50)) expect(computeHoldoutPoint('s-1', externalId)).toBe(referencePoint('s-1', externalId));
    // A numeric seed is its decimal string, as in the engine's config.
    expect(computeHoldoutPoint(42, 'iris-001')).toBe(referencePoint('42', 'iris-001'));
    expect(computeHoldoutPoint('a', 'b')).not.toBe(computeHoldoutPoint('b', 'a'));
  });

  it('is deterministic, and depends on the seed', () => {
    const examples = ids(2000);
    const first = splitHoldout(examples, { seed: 'run', fraction: 0.2 }).holdout.map((e) => e.externalId);
    expect(splitHoldout(examples, { seed: 'run', fraction: 0.2 }).holdout.map((e) => e.externalId)).toEqual(first);
    expect(splitHoldout(examples, { seed: 'other', fraction: 0.2 }).holdout.map((e) => e.externalId)).not.toEqual(first);
  });

  it('keeps every sample on its side when other samples are removed or added', () => {
    const examples = ids(1000);
    const { holdout } = splitHoldout(examples, { seed: 7, fraction: 0.3 });
    const held = new Set(holdout.map((e) => e.externalId));
    // Remove every third sample (held out or not) and add new ones: the survivors do not move.
    const changed = [...examples.filter((_, i) => i % 3 !== 0), ...ids(300, 'new')];
    const after = splitHoldout(changed, { seed: 7, fraction: 0.3 });
    for (const e of after.holdout.filter((x) => !x.externalId.startsWith('new-'))) expect(held.has(e.externalId)).toBe(true);
    for (const e of after.train.filter((x) => !x.externalId.startsWith('new-'))) expect(held.has(e.externalId)).toBe(false);
    // Forgetting one held-out sample leaves every other split decision as it was.
    const without = examples.filter((e) => e.externalId !== holdout[0].externalId);
    expect(splitHoldout(without, { seed: 7, fraction: 0.3 }).holdout).toEqual(holdout.slice(1));
  });

  it('holds out roughly the fraction asked, nothing at 0, a subset as the fraction grows', () => {
    const examples = ids(10_000);
    for (const fraction of [0.05, 0.2, 0.5]) {
      const { train, holdout } = splitHoldout(examples, { seed: 'f', fraction });
      expect(train.length + holdout.length).toBe(examples.length);
      // Binomial(10000, f): 5 standard deviations is at most 250.
      expect(Math.abs(holdout.length - fraction * examples.length)).toBeLessThan(250);
    }
    expect(splitHoldout(examples, { seed: 'f', fraction: 0 }).holdout).toEqual([]);
    const small = new Set(splitHoldout(examples, { seed: 'f', fraction: 0.1 }).holdout);
    const large = new Set(splitHoldout(examples, { seed: 'f', fraction: 0.3 }).holdout);
    for (const e of small) expect(large.has(e)).toBe(true);
  });

  it('keeps the order of the examples on both sides', () => {
    const iris = loadIris();
    const { train, holdout } = splitHoldout(iris, { seed: 'iris', fraction: 0.2 });
    const position = new Map(iris.map((e, i) => [e.externalId, i]));
    for (const side of [train, holdout]) {
      const positions = side.map((e) => position.get(e.externalId)!);
      expect(positions).toEqual([...positions].sort((a, b) => a - b));
    }
    expect(holdout.every((e) => isHeldOut(e.externalId, { seed: 'iris', fraction: 0.2 }))).toBe(true);
  });

  it.each([-0.1, 0.51, 1, Number.NaN, Infinity, '0.2'])('refuses the fraction %p', (fraction) => {
    expect(() => isHeldOut('x', { seed: 's', fraction: fraction as number })).toThrow(UnlearningError);
    expect(() => splitHoldout([], { seed: 's', fraction: fraction as number })).toThrow('holdoutFraction must be a number in [0, 0.5]');
  });
});
