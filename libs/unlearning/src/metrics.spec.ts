import fc from 'fast-check';
import { computeAccuracy, computeLosses, computeMembershipAuc } from './metrics';

/** The definition: over all (member, non-member) pairs, 1 if the member's loss is lower, 1/2 on ties. */
function pairwiseAuc(members: number[], nonMembers: number[]): number {
  let sum = 0;
  for (const m of members) for (const n of nonMembers) sum += m < n ? 1 : m === n ? 0.5 : 0;
  return sum / (members.length * nonMembers.length);
}

describe('membership-inference AUC', () => {
  it('equals the pairwise definition on random losses, ties included', () => {
    const loss = fc.integer({ min: 0, max: 20 }).map((v) => v / 4);
    fc.assert(
      fc.property(fc.array(loss, { minLength: 1, maxLength: 40 }), fc.array(loss, { minLength: 1, maxLength: 40 }), (members, nonMembers) => {
        expect(computeMembershipAuc(members, nonMembers)).toBeCloseTo(pairwiseAuc(members, nonMembers), 12);
      }),
    );
  });

  it('is 1 when members always have lower loss, 0 when higher, 0.5 when indistinguishable', () => {
    expect(computeMembershipAuc([0.1, 0.2], [0.5, 0.9])).toBe(1);
    expect(computeMembershipAuc([0.5, 0.9], [0.1, 0.2])).toBe(0);
    expect(computeMembershipAuc([0.3, 0.3], [0.3])).toBe(0.5);
    expect(computeMembershipAuc([], [0.3])).toBe(0.5);
  });
});

describe('accuracy and losses', () => {
  const predictions = { probabilities: Float32Array.from([0.9, 0.1, 0.2, 0.8, 0.6, 0.4]), labels: [0, 1, 0], classes: 2 };

  it('counts correct labels', () => {
    expect(computeAccuracy(predictions, [0, 1, 1])).toBeCloseTo(2 / 3);
    expect(computeAccuracy(predictions, [])).toBe(0);
  });

  it('takes -log p(true label)', () => {
    const losses = computeLosses(predictions, [0, 0, 1]);
    expect(losses[0]).toBeCloseTo(-Math.log(0.9), 6);
    expect(losses[1]).toBeCloseTo(-Math.log(0.2), 6);
    expect(losses[2]).toBeCloseTo(-Math.log(0.4), 6);
  });
});
