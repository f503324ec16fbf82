// Test helpers: the KeyStoreError a call throws (or rejects with), failing the test if it throws nothing.
import { KeyStoreError } from '../errors';

export function thrown(run: () => unknown): KeyStoreError {
  try {
    run();
  } catch (error) {
    if (error instanceof KeyStoreError) return error;
    throw error;
  }
  throw new Error('did not throw');
}

export async function rejected(run: () => Promise<unknown>): Promise<KeyStoreError> {
  try {
    await run();
  } catch (error) {
    if (error instanceof KeyStoreError) return error;
    throw error;
  }
  throw new Error('did not reject');
}
