import { MigrationInterface } from 'typeorm';
import type { KeyStoreProvider } from '@lethe/ledger';
import { AnchorRecordEntity } from '../anchoring/anchor-record.entity';
import { CreateAnchors1764216100000 } from '../anchoring/migrations/1764216100000-create-anchors';
import { CreateIdempotencyKeys1764216330000 } from '../auth/migrations/1764216330000-create-idempotency-keys';
import { SealIdempotencyKeys1764216640000 } from '../auth/migrations/1764216640000-seal-idempotency-keys';
import { CreateRateLimitHits1764216530000 } from '../common/migrations/1764216530000-create-rate-limit-hits';
import { DatasetEntity } from '../datasets/dataset.entity';
import { CreateDatasets1764216310000 } from '../datasets/migrations/1764216310000-create-datasets';
import { DatasetRetention1764217220000 } from '../datasets/migrations/1764217220000-dataset-retention';
import { ForgetRequestEntity } from '../forget-requests/forget-request.entity';
import { CreateForgetRequests1764216320000 } from '../forget-requests/migrations/1764216320000-create-forget-requests';
import { OweVersionRows1764217600000 } from '../models/migrations/1764217600000-owe-version-rows';
import { ForgetRequestApproach1764216830000 } from '../forget-requests/migrations/1764216830000-forget-request-approach';
import { SuspendForgetRequests1764217200000 } from '../forget-requests/migrations/1764217200000-suspend-forget-requests';
import { ForgetRequestFeatures1764217300000 } from '../forget-requests/migrations/1764217300000-forget-request-features';
import { JobEntity } from '../jobs/job.entity';
import { CreateJobs1764216400000 } from '../jobs/migrations/1764216400000-create-jobs';
import { CreateJobTasks1764217510000 } from '../jobs/migrations/1764217510000-create-job-tasks';
import { JobTasksWithoutNoiseSeeds1764217800000 } from '../jobs/migrations/1764217800000-job-tasks-without-noise-seeds';
import { ApiKeyEntity } from '../keys/api-key.entity';
import { CreateApiKeys1764216300000 } from '../keys/migrations/1764216300000-create-api-keys';
import { CreateModels1764216410000 } from '../models/migrations/1764216410000-create-models';
import { RetireVersions1764216700000 } from '../models/migrations/1764216700000-retire-versions';
import { VersionSamplesToCommitments1764216630000 } from '../models/migrations/1764216630000-version-samples-to-commitments';
import { RecordEvidenceLater1764216800000 } from '../models/migrations/1764216800000-record-evidence-later';
import { VersionGuarantees1764216820000 } from '../models/migrations/1764216820000-version-guarantees';
import { sealNoiseSeedsMigration } from '../models/migrations/1764217400000-seal-noise-seeds';
import { DataLifecycle1764217110000 } from '../models/migrations/1764217110000-data-lifecycle';
import { ModelEntity, ModelVersionEntity } from '../models/model.entity';
import { ModelLearnRequests1764217230000 } from '../models/migrations/1764217230000-model-learn-requests';
import { VersionSampleBatches1764217700000 } from '../models/migrations/1764217700000-version-sample-batches';
import { TrainingPlans1764218800000 } from '../models/migrations/1764218800000-training-plans';
import { CreateUnlearningPasses1764216520000 } from '../unlearning/migrations/1764216520000-create-unlearning-passes';

/** The service's own tables (beside the ledger's, which @lethe/ledger brings). */
export const API_ENTITIES = [
  AnchorRecordEntity,
  ApiKeyEntity,
  DatasetEntity,
  ForgetRequestEntity,
  JobEntity,
  ModelEntity,
  ModelVersionEntity,
];
/**
 * The service's migrations. Sealing the noise seeds of models stored before they were sealed needs the key store,
 * which `keyStore` gives when asked (only when there are seeds to seal).
 */
export function apiMigrations(keyStore?: KeyStoreProvider): (new () => MigrationInterface)[] {
  return [
    CreateAnchors1764216100000,
    CreateApiKeys1764216300000,
    CreateDatasets1764216310000,
    CreateForgetRequests1764216320000,
    CreateIdempotencyKeys1764216330000,
    CreateJobs1764216400000,
    CreateModels1764216410000,
    CreateUnlearningPasses1764216520000,
    CreateRateLimitHits1764216530000,
    VersionSamplesToCommitments1764216630000,
    SealIdempotencyKeys1764216640000,
    RetireVersions1764216700000,
    RecordEvidenceLater1764216800000,
    VersionGuarantees1764216820000,
    ForgetRequestApproach1764216830000,
    DataLifecycle1764217110000,
    SuspendForgetRequests1764217200000,
    DatasetRetention1764217220000,
    ModelLearnRequests1764217230000,
    ForgetRequestFeatures1764217300000,
    sealNoiseSeedsMigration(keyStore),
    CreateJobTasks1764217510000,
    OweVersionRows1764217600000,
    VersionSampleBatches1764217700000,
    JobTasksWithoutNoiseSeeds1764217800000,
    TrainingPlans1764218800000,
  ];
}

/** The migrations without a key store (a database with noise seeds in clear stops them, naming what is missing). */
export const API_MIGRATIONS: (new () => MigrationInterface)[] = apiMigrations();
