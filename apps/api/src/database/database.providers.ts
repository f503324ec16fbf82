import { Provider } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { KeyStore } from '@lethe/keystore';
import { Ledger, SampleVault } from '@lethe/ledger';
import { DATA_DIR, KEY_STORE } from '../config/config.provider';

/**
 * What the service and each worker store into, as providers: the database, the one Ledger of the process,
 * the key store of sample data keys (opened at start-up), the sample vault and DATA_DIR.
 */
export function storageProviders(options: { dataSource: DataSource; ledger: Ledger; keyStore: KeyStore; dataDir: string }): Provider[] {
  return [
    { provide: DataSource, useValue: options.dataSource },
    { provide: Ledger, useValue: options.ledger },
    { provide: KEY_STORE, useValue: options.keyStore },
    {
      provide: SampleVault,
      useFactory: (dataSource: DataSource, ledger: Ledger, keyStore: KeyStore) => new SampleVault(dataSource, ledger, keyStore),
      inject: [DataSource, Ledger, KEY_STORE],
    },
    { provide: DATA_DIR, useValue: options.dataDir },
  ];
}
