/**
 * Where checkpoints live, addressed by a lowercase hex hash. Implementations must make `put` atomic, and
 * `delete` durable once it resolves (a checkpoint deleted because it learned a forgotten sample must not
 * come back after a crash); deleting an address that is not stored is not an error.
 */
export interface CheckpointStore {
  get(hash: string): Promise<Uint8Array | undefined>;
  put(hash: string, bytes: Uint8Array): Promise<void>;
  has(hash: string): Promise<boolean>;
  /** Removes the checkpoint; resolves true when it was stored, false when it was not. */
  delete(hash: string): Promise<boolean>;
}

/** Keeps checkpoints in a Map; for tests and throwaway runs. */
export class MemoryCheckpointStore implements CheckpointStore {
  private readonly entries = new Map<string, Uint8Array>();

  async get(hash: string): Promise<Uint8Array | undefined> {
    const bytes = this.entries.get(hash);
    return bytes === undefined ? undefined : new Uint8Array(bytes);
  }

  async put(hash: string, bytes: Uint8Array): Promise<void> {
    this.entries.set(hash, new Uint8Array(bytes));
  }

  async has(hash: string): Promise<boolean> {
    return this.entries.has(hash);
  }

  async delete(hash: string): Promise<boolean> {
    return this.entries.delete(hash);
  }

  get size(): number {
    return this.entries.size;
  }
}
