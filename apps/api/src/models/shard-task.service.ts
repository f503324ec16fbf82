import { Inject, Injectable, Logger } from '@nestjs/common';
import type { ArtifactStore } from '@lethe/artifacts';
import { PhaseClock, ShardResult, ShardTask, ShardTrainer } from '@lethe/unlearning';
import { ARTIFACT_STORE } from '../config/config.provider';
import { checkpointStoreIn } from './kept-methods';
import { ModelStore } from './model.store';
import { OpenedSamples } from './opened-samples';
import { putNoiseSeeds, usesNoiseSeeds } from './noise-seeds';

/**
 * A worker's side of shard tasks: reads the task's samples (by commitment; from memory when a job of this worker
 * holds them open, OpenedSamples) and trains the one shard with the engine, its checkpoints into the artifact store
 * every worker shares. One task at a time; the step sessions are kept from one task to the next.
 */
@Injectable()
export class ShardTaskService {
  private readonly logger = new Logger('ShardTasks');
  private readonly current: { onProgress?: (fraction: number) => void } = {};
  private readonly trainer: ShardTrainer;

  constructor(
    private readonly store: ModelStore,
    private readonly opened: OpenedSamples,
    @Inject(ARTIFACT_STORE) artifacts: ArtifactStore,
  ) {
    const current = this.current;
    this.trainer = new ShardTrainer({
      store: checkpointStoreIn(artifacts),
      log: (message) => this.logger.warn(message), // e.g. a shard retrained from scratch: its checkpoints come from another runtime envelope
      get onProgress() {
        return current.onProgress && ((p: { fraction: number }) => current.onProgress?.(p.fraction));
      },
    });
  }

  /**
   * `clock`: charged seeds (opening the model's noise seeds), samples (reading and opening them, or taking them from
   * the job of this worker that holds them), then the engine's phases.
   */
  async run(queued: ShardTask, onProgress: (fraction: number) => void, clock = new PhaseClock()): Promise<ShardResult> {
    const task = await this.withNoiseSeeds(queued);
    clock.lap('seeds');
    const commitments = task.commitments.flat();
    const samples = this.opened.find(commitments) ?? (await this.store.loadSamples(commitments));
    clock.lap('samples');
    this.current.onProgress = onProgress;
    try {
      return await this.trainer.train(task, samples, clock);
    } finally {
      this.current.onProgress = undefined;
    }
  }

  /** The task with its model's noise seeds, opened from the model's row: a task is queued without them (withoutNoiseSeeds). */
  private async withNoiseSeeds(task: ShardTask): Promise<ShardTask> {
    if (!usesNoiseSeeds(task.config)) return task;
    return { ...task, config: putNoiseSeeds(task.config, await this.store.noiseSeeds.openOf(task.modelId)) };
  }

  async release(): Promise<void> {
    await this.trainer.release();
  }
}
