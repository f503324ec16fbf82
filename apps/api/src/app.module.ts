import { DynamicModule, Module } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { Ledger } from '@lethe/ledger';
import { AnchoringLoop } from './anchoring/anchoring-loop';
import { AnchorsController } from './anchoring/anchors.controller';
import { ANCHORING_LOOP, AnchorsService } from './anchoring/anchors.service';
import { AppConfig } from './config/config';
import { APP_CONFIG } from './config/config.provider';
import { HealthController } from './health/health.controller';
import { HEALTH_REPORTERS, HealthReporter, HealthService } from './health/health.service';
import { LedgerController } from './ledger/ledger.controller';
import { LedgerService } from './ledger/ledger.service';

export interface AppModuleOptions {
  config: AppConfig;
  dataSource: DataSource;
  /** The one Ledger of the process, shared with the anchoring loop (one group-commit queue). */
  ledger: Ledger;
  /** Parts started outside Nest (the anchoring loop) that report in /v1/health. */
  healthReporters?: HealthReporter[];
  /** The anchoring loop, when anchoring is on. */
  anchoringLoop?: AnchoringLoop | null;
}

@Module({})
export class AppModule {
  static forRoot(options: AppModuleOptions): DynamicModule {
    return {
      module: AppModule,
      controllers: [HealthController, LedgerController, AnchorsController],
      providers: [
        { provide: APP_CONFIG, useValue: options.config },
        { provide: DataSource, useValue: options.dataSource },
        { provide: Ledger, useValue: options.ledger },
        { provide: HEALTH_REPORTERS, useValue: options.healthReporters ?? [] },
        { provide: ANCHORING_LOOP, useValue: options.anchoringLoop ?? null },
        HealthService,
        LedgerService,
        AnchorsService,
      ],
    };
  }
}
