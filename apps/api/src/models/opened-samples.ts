import { Injectable } from '@nestjs/common';
import type { Sample } from '@lethe/unlearning';

/**
 * The samples a job of this worker opened from the vault, by commitment, for as long as the job holds them (a
 * training, or a forget pass's step from a version, while its shard tasks run): a shard task of that job that this
 * worker takes finds its samples here instead of reading and opening them from the vault again. Nothing stays once
 * the last holder lets go, and nothing leaves the process: the same samples, in memory, that the job has open anyway.
 */
@Injectable()
export class OpenedSamples {
  private readonly held = new Map<string, { sample: Sample; holders: number }>();

  /** Holds `samples` until the returned function is called (once; a second call does nothing). */
  hold(samples: readonly Sample[]): () => void {
    for (const sample of samples) {
      const entry = this.held.get(sample.commitment);
      if (entry) entry.holders++;
      else this.held.set(sample.commitment, { sample, holders: 1 });
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const sample of samples) {
        const entry = this.held.get(sample.commitment);
        if (entry && --entry.holders === 0) this.held.delete(sample.commitment);
      }
    };
  }

  /**
   * The samples with these commitments, in this order, as the vault opens them (externalId, features, label,
   * commitment: no learn batch, which a task's plan gives), when every one is held; undefined otherwise.
   */
  find(commitments: readonly string[]): Sample[] | undefined {
    const found: Sample[] = [];
    for (const commitment of commitments) {
      const sample = this.held.get(commitment)?.sample;
      if (sample === undefined) return undefined;
      found.push({ externalId: sample.externalId, features: sample.features, label: sample.label, commitment });
    }
    return found;
  }
}
