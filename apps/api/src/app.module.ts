import { DynamicModule, Module } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { Ledger } from '@lethe/ledger';
import { AppConfig } from './config/config';
import { APP_CONFIG } from './config/config.provider';
import { HealthController } from './health/health.controller';
import { HEALTH_REPORTERS, HealthReporter, HealthService } from './health/health.service';
import { LedgerController } from './ledger/ledger.controller';
import { LedgerService } from './ledger/ledger.service';

export interface AppModuleOptions {
  config: AppConfig;
  dataSource: DataSource;
  /** Parts started outside Nest (the anchoring loop) that report in /v1/health. */
  healthReporters?: HealthReporter[];
}

@Module({})
export class AppModule {
  static forRoot(options: AppModuleOptions): DynamicModule {
    return {
      module: AppModule,
      controllers: [HealthController, LedgerController],
      providers: [
        { provide: APP_CONFIG, useValue: options.config },
        { provide: DataSource, useValue: options.dataSource },
        { provide: Ledger, useFactory: (dataSource: DataSource) => new Ledger(dataSource), inject: [DataSource] },
        { provide: HEALTH_REPORTERS, useValue: options.healthReporters ?? [] },
        HealthService,
        LedgerService,
      ],
    };
  }
}
