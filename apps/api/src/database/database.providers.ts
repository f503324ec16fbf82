import { Inject, Injectable, OnModuleDestroy, Provider } from '@nestjs/common';
import { DataSource } from 'typeorm';
import type { ArtifactStore } from '@lethe/artifacts';
import { KeyStore } from '@lethe/keystore';
import { Ledger, SampleVault } from '@lethe/ledger';
import { ARTIFACT_STORE, DATA_DIR, KEY_STORE } from '../config/config.provider';

const OWNS_ARTIFACT_STORE = Symbol('OWNS_ARTIFACT_STORE');

/** Closes the artifact store when the container stops, if the container opened it (one it was given is its giver's to close). */
@Injectable()
export class ArtifactStoreCloser implements OnModuleDestroy {
  constructor(
    @Inject(ARTIFACT_STORE) private readonly artifacts: ArtifactStore,
    @Inject(OWNS_ARTIFACT_STORE) private readonly owned: boolean,
  ) {}

  async onModuleDestroy(): Promise<void> {
    if (this.owned) await this.artifacts.close();
  }
}

/**
 * What the service and each worker store into, as providers: the database, the one Ledger of the process,
 * the key store of sample data keys (opened at start-up), the sample vault, the artifact store (checkpoints and ONNX files; `owned`: closed with the container) and
 * DATA_DIR.
 */
export function storageProviders(options: { dataSource: DataSource; ledger: Ledger; keyStore: KeyStore; dataDir: string; artifacts: ArtifactStore; ownsArtifacts?: boolean }): Provider[] {
  return [
    { provide: ARTIFACT_STORE, useValue: options.artifacts },
    { provide: OWNS_ARTIFACT_STORE, useValue: options.ownsArtifacts ?? false },
    ArtifactStoreCloser,
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
