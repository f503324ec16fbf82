import { DynamicModule, Module } from '@nestjs/common';
import { DatasetVersionService } from '../datasets/dataset-version.service';
import { NestFactory } from '@nestjs/core';
import PgBoss from 'pg-boss';
import { DataSource } from 'typeorm';
import { KeyStore } from '@lethe/keystore';
import type { ArtifactStore } from '@lethe/artifacts';
import { Ledger } from '@lethe/ledger';
import { storageProviders } from '../database/database.providers';
import { ForgetRequestRepository } from '../forget-requests/forget-request.repository';
import { JOB_CONFIG, JobConfig } from '../jobs/job.config';
import { JobRepository } from '../jobs/job.repository';
import { KeptMethods } from '../models/kept-methods';
import { JobTaskRepository } from '../jobs/job-task.repository';
import { ShardTaskQueue } from '../jobs/shard-task.queue';
import { ShardTaskService } from '../models/shard-task.service';
import { ModelTrainingService } from '../models/model-training.service';
import { ModelStore } from '../models/model.store';
import { OpenedSamples } from '../models/opened-samples';
import { RetirementStore } from '../models/retirement.store';
import { RetirementService } from '../unlearning/retirement.service';
import { UnlearningService } from '../unlearning/unlearning.service';
import { RestoreService } from '../unlearning/restore.service';
import { ForgetSteps } from '../forget-requests/forget-steps';
import { FeatureUnlearningService } from '../unlearning/feature-unlearning.service';
import { BiasScanRunner } from '../unlearning/bias-scan.runner';
import { JobWorker } from './job.worker';

export interface WorkerOptions {
  /** pg-boss on the service's database (startJobBoss). */
  boss: PgBoss;
  dataSource: DataSource;
  /** The one Ledger of the process. */
  ledger: Ledger;
  /** The key store of sample data keys (openServiceKeyStore). */
  keyStore: KeyStore;
  dataDir: string;
  /** Where checkpoints and ONNX files are: what every worker of the deployment shares (openArtifactStore). */
  artifacts: ArtifactStore;
  config: JobConfig;
}

/** A job worker and what it runs: training (ModelTrainingService) and unlearning passes (UnlearningService). */
@Module({})
export class WorkerModule {
  static forRoot(options: WorkerOptions): DynamicModule {
    return {
      module: WorkerModule,
      providers: [
        ...storageProviders(options),
        { provide: PgBoss, useValue: options.boss },
        { provide: JOB_CONFIG, useValue: options.config },
        JobRepository,
        JobTaskRepository,
        ShardTaskQueue,
        ShardTaskService,
        ForgetRequestRepository,
        ModelStore,
        OpenedSamples,
        KeptMethods,
        ModelTrainingService,
        RetirementStore,
        RetirementService,
        UnlearningService,
        RestoreService,
        ForgetSteps,
        DatasetVersionService,
        FeatureUnlearningService,
        BiasScanRunner,
        JobWorker,
      ],
    };
  }
}

/**
 * A worker in a container of its own: what its UnlearningService keeps between passes (engine methods,
 * latest versions) is its own, as another process's would be. Call `start`, and `stop` when done.
 */
export async function createJobWorker(options: WorkerOptions): Promise<JobWorker> {
  // No logger option: Nest logs through the process's logger (installLogger), and a DI error is thrown, not an exit.
  const context = await NestFactory.createApplicationContext(WorkerModule.forRoot(options), { abortOnError: false });
  return context.get(JobWorker);
}
