import { ArtifactStore, FileArtifactStore } from '@lethe/artifacts';
import { CheckpointStore } from './checkpoint-store';
import { UnlearningError } from './errors';
import { isHex32 } from './hash';

/**
 * Checkpoints kept in an artifact store (@lethe/artifacts: files, PostgreSQL, ...), as the engine asks for
 * them: by checkpoint address. The store makes a put atomic and a delete durable; the engine checks what it
 * loads against the weights' SHA-256 the version recorded (CHECKPOINT_CORRUPT).
 */
export class ArtifactCheckpointStore implements CheckpointStore {
  constructor(readonly artifacts: ArtifactStore) {}

  async get(hash: string): Promise<Uint8Array | undefined> {
    return this.artifacts.get(checkpointRef(hash));
  }

  async has(hash: string): Promise<boolean> {
    return this.artifacts.has(checkpointRef(hash));
  }

  async put(hash: string, bytes: Uint8Array): Promise<void> {
    return this.artifacts.put(checkpointRef(hash), bytes);
  }

  async delete(hash: string): Promise<boolean> {
    return this.artifacts.delete(checkpointRef(hash));
  }
}

/**
 * Checkpoints as files under `<root>/checkpoints/<first 2 hex>/<hash>.bin` (a DATA_DIR-style layout): a put
 * writes a temp file in the same directory, fsyncs it, then renames it over the target, so a reader never
 * sees a half-written checkpoint; a delete unlinks the file and fsyncs its directory, so the removal
 * survives a crash once it resolved (FileArtifactStore).
 */
export class FileCheckpointStore extends ArtifactCheckpointStore {
  private readonly files: FileArtifactStore;

  constructor(root: string) {
    const files = new FileArtifactStore(root);
    super(files);
    this.files = files;
  }

  pathOf(hash: string): string {
    return this.files.pathOf(checkpointRef(hash));
  }
}

function checkpointRef(hash: string): { kind: 'checkpoint'; address: string } {
  if (!isHex32(hash)) throw new UnlearningError('INVALID_REQUEST', `checkpoint hash must be 64 lowercase hex characters, got ${hash}`);
  return { kind: 'checkpoint', address: hash };
}
