import { Provider } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { Ledger, SampleVault } from '@lethe/ledger';
import { DATA_DIR } from '../config/config.provider';

/** What the service and each worker store into, as providers: the database, the one Ledger of the process, the sample vault and DATA_DIR. */
export function storageProviders(options: { dataSource: DataSource; ledger: Ledger; dataDir: string }): Provider[] {
  return [
    { provide: DataSource, useValue: options.dataSource },
    { provide: Ledger, useValue: options.ledger },
    { provide: SampleVault, useFactory: (dataSource: DataSource, ledger: Ledger) => new SampleVault(dataSource, ledger), inject: [DataSource, Ledger] },
    { provide: DATA_DIR, useValue: options.dataDir },
  ];
}
