import { ForgetLifecycleService } from './forget-requests/forget-lifecycle.service';
import { ForgetSteps } from './forget-requests/forget-steps';
import { DynamicModule, Module } from '@nestjs/common';
import { ForgetRequestExtensions } from './forget-requests/forget-request-extension';
import { ModelLifecycleService } from './models/model-lifecycle.service';
import { DatasetVersionService } from './datasets/dataset-version.service';
import { APP_GUARD, APP_INTERCEPTOR } from '@nestjs/core';
import { ThrottlerModule } from '@nestjs/throttler';
import { DataSource } from 'typeorm';
import { KeyStore } from '@lethe/keystore';
import type { ArtifactStore } from '@lethe/artifacts';
import { Ledger } from '@lethe/ledger';
import { AnchoringLoop } from './anchoring/anchoring-loop';
import { AnchorsController } from './anchoring/anchors.controller';
import { ANCHORING_LOOP, AnchorsService } from './anchoring/anchors.service';
import { IdempotencyInterceptor } from './auth/idempotency.interceptor';
import { IdempotencyService } from './auth/idempotency.service';
import { AppConfig } from './config/config';
import { JsonBodyInterceptor } from './common/json-body.interceptor';
import { RATE_LIMIT_IDENTITY, RateLimitGuard, rateLimitOptions } from './common/rate-limit.guard';
import { RATE_LIMIT_CLOCK, RateLimitClock } from './common/rate-limit.storage';
import { APP_CONFIG } from './config/config.provider';
import { openArtifactStore } from './database/artifact-store';
import { storageProviders } from './database/database.providers';
import { DatasetController } from './datasets/dataset.controller';
import { DatasetService } from './datasets/dataset.service';
import { SampleUploadService } from './datasets/sample-upload.service';
import { ForgetRequestController } from './forget-requests/forget-request.controller';
import { FORGET_REQUEST_QUEUE, ForgetRequestQueue, DroppingForgetRequestQueue } from './forget-requests/forget-request.queue';
import { ForgetRequestRepository } from './forget-requests/forget-request.repository';
import { ForgetRequestService } from './forget-requests/forget-request.service';
import { JobController } from './jobs/job.controller';
import { JOB_QUEUE, JobQueue, DroppingJobQueue } from './jobs/job.queue';
import { JobRepository } from './jobs/job.repository';
import { JobTaskRepository } from './jobs/job-task.repository';
import { JobService } from './jobs/job.service';
import { ModelController } from './models/model.controller';
import { ModelService } from './models/model.service';
import { BiasScanService } from './models/bias-scan.service';
import { ModelStore } from './models/model.store';
import { HealthController } from './health/health.controller';
import { HEALTH_REPORTERS, HealthReporter, HealthService } from './health/health.service';
import { ApiKeyController } from './keys/api-key.controller';
import { ApiKeyAuthenticator } from './keys/api-key.authenticator';
import { ApiKeyGuard } from './keys/api-key.guard';
import { ApiKeyService } from './keys/api-key.service';
import { LedgerController } from './ledger/ledger.controller';
import { LedgerService } from './ledger/ledger.service';
import { PortalController } from './portal/portal.controller';
import { EntryReceiptService } from './receipts/entry-receipt.service';
import { ReceiptController } from './receipts/receipt.controller';
import { ReceiptService } from './receipts/receipt.service';
import { ErasureSweep } from './sweeps/erasure-sweep.service';

export interface AppModuleOptions {
  config: AppConfig;
  dataSource: DataSource;
  /** The one Ledger of the process, shared with the anchoring loop (one group-commit queue). */
  ledger: Ledger;
  /** The key store of sample data keys (openServiceKeyStore: DATA_DIR/keys under LETHE_MASTER_KEY). */
  keyStore: KeyStore;
  /** Parts started outside Nest (the anchoring loop) that report in /v1/health. */
  healthReporters?: HealthReporter[];
  /** The anchoring loop, when anchoring is on. */
  anchoringLoop?: AnchoringLoop | null;
  /** Where accepted forget requests go for unlearning (default: they wait in state `received`). */
  forgetRequestQueue?: ForgetRequestQueue;
  /** Where training jobs go (pg-boss; default: they wait in state `queued` until a worker sends them again). */
  jobQueue?: JobQueue;
  /** Where checkpoints and ONNX files are (default: opened from `config.artifacts`, and closed with the app). */
  artifacts?: ArtifactStore;
  /** The clock the rate limit counts windows by (default: the database's); tests drive time with it. */
  rateLimitClock?: RateLimitClock;
}

@Module({})
export class AppModule {
  static forRoot(options: AppModuleOptions): DynamicModule {
    // RATE_LIMIT_PER_MINUTE=0: no throttler at all. Otherwise it runs before ApiKeyGuard (guards run in
    // the order they are provided); both ask ApiKeyAuthenticator, which looks a request's key up once.
    const rateLimit = options.config.rateLimitPerMinute > 0;
    return {
      module: AppModule,
      imports: rateLimit ? [ThrottlerModule.forRoot(rateLimitOptions(options.config.rateLimitPerMinute))] : [],
      controllers: [
        HealthController,
        LedgerController,
        AnchorsController,
        ApiKeyController,
        DatasetController,
        ForgetRequestController,
        ReceiptController,
        ModelController,
        JobController,
        PortalController,
      ],
      providers: [
        { provide: APP_CONFIG, useValue: options.config },
        ...storageProviders({
          dataSource: options.dataSource,
          ledger: options.ledger,
          keyStore: options.keyStore,
          dataDir: options.config.dataDir,
          // The service reads ONNX files (downloads, predictions) from where the workers put them.
          artifacts: options.artifacts ?? openArtifactStore(options.config.artifacts, options.config.dataDir, (options.dataSource.options as { url: string }).url),
          ownsArtifacts: options.artifacts === undefined,
        }),
        { provide: HEALTH_REPORTERS, useValue: options.healthReporters ?? [] },
        { provide: ANCHORING_LOOP, useValue: options.anchoringLoop ?? null },
        { provide: FORGET_REQUEST_QUEUE, useValue: options.forgetRequestQueue ?? new DroppingForgetRequestQueue() },
        { provide: JOB_QUEUE, useValue: options.jobQueue ?? new DroppingJobQueue() },
        ...(rateLimit ? [{ provide: APP_GUARD, useClass: RateLimitGuard }] : []),
        { provide: APP_GUARD, useClass: ApiKeyGuard },
        // Interceptors run in this order, after the guards: the body is read before the idempotency check hashes it.
        { provide: APP_INTERCEPTOR, useClass: JsonBodyInterceptor },
        { provide: APP_INTERCEPTOR, useClass: IdempotencyInterceptor },
        HealthService,
        LedgerService,
        AnchorsService,
        ApiKeyService,
        ApiKeyAuthenticator,
        { provide: RATE_LIMIT_IDENTITY, useExisting: ApiKeyAuthenticator },
        ...(options.rateLimitClock ? [{ provide: RATE_LIMIT_CLOCK, useValue: options.rateLimitClock }] : []),
        IdempotencyService,
        DatasetService,
        SampleUploadService,
        DatasetVersionService,
        ForgetRequestRepository,
        ForgetRequestService,
        ForgetSteps,
        ForgetLifecycleService,
        ForgetRequestExtensions,
        EntryReceiptService,
        ReceiptService,
        JobRepository,
        JobTaskRepository,
        JobService,
        ModelStore,
        ModelService,
        ModelLifecycleService,
        BiasScanService,
        ErasureSweep,
      ],
    };
  }
}
