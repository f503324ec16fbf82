import { DataSource } from 'typeorm';
import { withAdvisoryLock } from '@lethe/ledger';

/** Advisory lock namespace for "who may read or change what a dataset's models learned" ("learn"). */
const LEARN_LOCK = 0x6c6561726e & 0x7fffffff;

/**
 * Runs `fn` holding a session-level advisory lock on the dataset, on a connection of its own: trainings
 * share it (`shared`), an unlearning pass holds it alone (`exclusive`), so a model never trains on samples
 * that are being forgotten and forgetting never misses a model that is training. A worker that dies
 * releases the lock with its connection.
 */
export function withDatasetLock<T>(dataSource: DataSource, datasetId: string, mode: 'shared' | 'exclusive', fn: () => Promise<T>): Promise<T> {
  return withAdvisoryLock(dataSource, { namespace: LEARN_LOCK, key: datasetId, mode }, fn);
}

/**
 * Runs `fn` holding the dataset's lock alone if no one else holds it (a pass, a training); otherwise does
 * nothing and returns undefined. On a connection of its own, as withDatasetLock.
 */
export function tryWithDatasetLock<T>(dataSource: DataSource, datasetId: string, fn: () => Promise<T>): Promise<T | undefined> {
  return withAdvisoryLock(dataSource, { namespace: LEARN_LOCK, key: datasetId, mode: 'exclusive', try: true }, fn);
}
