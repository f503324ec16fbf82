/** Where checkpoints live, addressed by a lowercase hex hash. Implementations must make `put` atomic. */
export interface CheckpointStore {
  get(hash: string): Promise<Uint8Array | undefined>;
  put(hash: string, bytes: Uint8Array): Promise<void>;
  has(hash: string): Promise<boolean>;
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

  get size(): number {
    return this.entries.size;
  }
}
