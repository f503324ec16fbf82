/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import { MemoryCheckpointStore } from './checkpoint-store';
import { normalizeConfig, TrainingConfigInput } from './config';
import { MemoryLedgerSink } from './events';
import { countScannedSlices, MAX_SCANNED_SLICES, scanBiasBySlices, SliceScanResult } from './leave-one-slice-out';
import { createSisaMethod } from './sisa';
import { commitExamples, plantedBiasSet, plantedInSlices } from './testing/factories';

const config: TrainingConfigInput = {
  method: 'sisa',
  model: 'mlp',
  hiddenLayers: [8],
  numFeatures: 5,
  numClasses: 2,
  shards: 2,
  slices: 4,
  epochs: 4,
  batchSize: 16,
  learningRate: 0.1,
  seed: 'loso',
};

/** The slices the plant is placed in: slice 1 of shard 0 and slice 2 of shard 1 (2 of the 8). */
const TARGETS = new Set(['0/1', '1/2']);
const PLACEMENT = { seed: 'loso', shards: 2, slices: 4, targets: TARGETS };

async function scan(plant: boolean): Promise<{ result: SliceScanResult; planted: Set<string>; samples: number; again: SliceScanResult }> {
  const { rows, planted } = plantedInSlices(1200, 'loso-rows', PLACEMENT, plant);
  const holdout = plantedBiasSet(600, 'loso-holdout', false).rows;
  const store = new MemoryCheckpointStore();
  const ledger = new MemoryLedgerSink();
  const method = createSisaMethod({ store, ledger });
  try {
    const model = await method.train({ modelId: 'm', config, samples: commitExamples(rows) });
    const logged = ledger.events.length;
    const stored = store.size;
    const fractions: number[] = [];
    const result = await scanBiasBySlices({ store }, model, holdout, 0, { limit: rows.length, onProgress: (f) => fractions.push(f) });
    // Nothing logged, nothing stored, nothing published; progress once per retrained slice, up to 1.
    expect(ledger.events.length).toBe(logged);
    expect(store.size).toBe(stored);
    expect(fractions).toEqual(result.slices.map((_, i) => (i + 1) / result.slices.length));
    const again = await scanBiasBySlices({ store }, model, holdout, 0, { limit: rows.length });
    return { result, planted, samples: rows.length, again };
  } finally {
    await method.release();
  }
}

describe('bias identification by leave-one-slice-out (SISA MLP)', () => {
  it('with the plant concentrated in 2 of 8 slices, the top 2 slices\' samples hold most planted samples; the control ranks those slices lower; the scan is deterministic', async () => {
    const biased = await scan(true);
    const control = await scan(false);
    const { result, planted } = biased;
    expect(result.method).toBe('leave-one-slice-out');
    expect(result.metric).toBe('equalizedOddsDifference');
    expect(result.slices).toHaveLength(8);
    // The top candidates: the samples of the two most influential slices (a quarter of the training set; a
    // ranking blind to the plant would hold a quarter of the planted samples there on average).
    const byInfluence = [...result.slices].sort((a, b) => b.influence - a.influence);
    const top = byInfluence[0].count + byInfluence[1].count;
    const hits = result.candidates.slice(0, top).filter((c) => planted.has(c.externalId)).length;
    const describe = (r: SliceScanResult) => r.slices.map((s) => `${s.shard}/${s.slice} ${s.influence.toFixed(3)}`).join(', ');
    console.log(
      `LOSO planted: gap ${result.gapBefore.toFixed(3)}; ${hits} of ${planted.size} planted samples in the top ${top} of ${biased.samples} candidates; ` +
        `slices: ${describe(result)}\nLOSO control: gap ${control.result.gapBefore.toFixed(3)}; slices: ${describe(control.result)}`,
    );
    expect(hits / planted.size).toBeGreaterThan(0.5);
    expect(new Set(byInfluence.slice(0, 2).map((s) => `${s.shard}/${s.slice}`))).toEqual(TARGETS);
    // The control (same rows, no flipped label): the plant's slices move the gap less than they do with the plant.
    const influenceOf = (r: SliceScanResult, key: string) => r.slices.find((s) => `${s.shard}/${s.slice}` === key)!.influence;
    for (const key of TARGETS) expect(influenceOf(control.result, key)).toBeLessThan(influenceOf(result, key));
    expect(control.result.gapBefore).toBeLessThan(result.gapBefore);
    // Samples of one slice tie and are ordered by commitment; the same scan twice gives the same ranking.
    expect(biased.again).toEqual(result);
    for (let i = 1; i < result.candidates.length; i++) {
      const [a, b] = [result.candidates[i - 1], result.candidates[i]];
      expect(a.influence > b.influence || (a.influence === b.influence && a.commitment < b.commitment)).toBe(true);
    }
  });

  it('what it cannot find: the same kind of plant spread over every slice (plantedBiasSet) leaves the top 2 slices no more than their share', async () => {
    const { rows, planted } = plantedBiasSet(1200, 'loso-spread', true);
    const holdout = plantedBiasSet(600, 'loso-holdout', false).rows;
    const store = new MemoryCheckpointStore();
    const method = createSisaMethod({ store });
    try {
      const model = await method.train({ modelId: 'm', config, samples: commitExamples(rows) });
      const result = await scanBiasBySlices({ store }, model, holdout, 0, { limit: rows.length });
      const byInfluence = [...result.slices].sort((a, b) => b.influence - a.influence);
      const top = byInfluence[0].count + byInfluence[1].count;
      const hits = result.candidates.slice(0, top).filter((c) => planted.has(c.externalId)).length;
      console.log(`LOSO, plant spread evenly: gap ${result.gapBefore.toFixed(3)}; ${hits} of ${planted.size} planted samples in the top ${top} of ${rows.length}`);
      // Each slice holds about its share of the plant: leaving one out cannot single the planted samples out.
      expect(hits / planted.size).toBeLessThan(0.5);
    } finally {
      await method.release();
    }
  });

  it('finds a biased learn batch: the slices it was appended as rank first and hold every planted sample', async () => {
    const base = commitExamples(plantedBiasSet(1000, 'loso-base', false).rows);
    // A learn batch from a biased source: every positive of group 1 in it labelled 0.
    const planted = new Set<string>();
    const batch = commitExamples(
      plantedBiasSet(240, 'loso-batch', false).rows.map((row) => {
        if (Number(row.features[0]) !== 1 || row.label !== 1) return row;
        planted.add(row.externalId);
        return { ...row, label: 0 };
      }),
    );
    const holdout = plantedBiasSet(600, 'loso-holdout', false).rows;
    const store = new MemoryCheckpointStore();
    const method = createSisaMethod({ store });
    try {
      const v1 = await method.train({ modelId: 'm', config, samples: base });
      const v2 = await method.relearn!(v1, { samples: [...base, ...batch], externalIds: batch.map((s) => s.externalId), append: true });
      const result = await scanBiasBySlices({ store }, v2, holdout, 0, { limit: base.length + batch.length });
      expect(result.slices).toHaveLength(10);
      const byInfluence = [...result.slices].sort((a, b) => b.influence - a.influence);
      const top = byInfluence[0].count + byInfluence[1].count;
      const hits = result.candidates.slice(0, top).filter((c) => planted.has(c.externalId)).length;
      console.log(
        `LOSO, biased learn batch: gap ${result.gapBefore.toFixed(3)}; ${hits} of ${planted.size} planted samples in the top ${top}; ` +
          `slices: ${result.slices.map((s) => `${s.shard}/${s.slice} ${s.influence.toFixed(3)}`).join(', ')}`,
      );
      expect(new Set(byInfluence.slice(0, 2).map((s) => `${s.shard}/${s.slice}`))).toEqual(new Set(['0/4', '1/4']));
      expect(hits).toBe(planted.size);
    } finally {
      await method.release();
    }
  });

  it('refuses a full retraining, a protected column out of range and a scan beyond the slice limit, naming them', async () => {
    const { rows } = plantedBiasSet(200, 'loso-small', false);
    const store = new MemoryCheckpointStore();
    const method = createSisaMethod({ store });
    try {
      const model = await method.train({ modelId: 'm', config: { ...config, epochs: 1 }, samples: commitExamples(rows) });
      await expect(scanBiasBySlices({ store }, model, rows, 5)).rejects.toThrow(/protectedFeature 5/);
      const full = { ...model, config: normalizeConfig({ ...config, method: 'full-retrain', shards: 1, slices: 1 }) };
      await expect(scanBiasBySlices({ store }, full, rows, 0)).rejects.toThrow(/needs a SISA model/);
      const many = { ...model, shards: Array.from({ length: 17 }, (_, shard) => ({ ...model.shards[0], shard })) };
      expect(countScannedSlices(many)).toBe(68);
      await expect(scanBiasBySlices({ store }, many, rows, 0)).rejects.toThrow(new RegExp(`slices: .* 68 non-empty slices.* limit is ${MAX_SCANNED_SLICES}`));
    } finally {
      await method.release();
    }
  });
});
