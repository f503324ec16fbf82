import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { ArtifactStore, FileArtifactStore, PostgresArtifactStore, removeFileDurably } from '@lethe/artifacts';
import type { DataSource } from 'typeorm';
import { AppConfig, ArtifactConfig } from '../config/config';

/**
 * The process's artifact store: files under DATA_DIR, or PostgreSQL (ARTIFACT_DATABASE_URL, else the
 * service's database, embedded or DATABASE_URL). Nothing is connected until the first use.
 */
export function openArtifactStore(config: ArtifactConfig, dataDir: string, databaseUrl: string): ArtifactStore {
  return config.store === 'files'
    ? new FileArtifactStore(dataDir)
    : new PostgresArtifactStore({ url: config.databaseUrl ?? databaseUrl, vacuum: config.vacuum });
}

/**
 * The artifact store of the deployment (files under DATA_DIR, or PostgreSQL) for `npm start` and
 * `npm run worker`, with what earlier versions left under DATA_DIR moved into it.
 */
export async function openArtifacts(config: AppConfig, dataSource: DataSource, log: (message: string) => void): Promise<ArtifactStore> {
  const artifacts = openArtifactStore(config.artifacts, config.dataDir, (dataSource.options as { url: string }).url);
  log(`artifacts: ${artifacts.description}`);
  const moved = await moveLegacyArtifacts(config.artifacts, config.dataDir, artifacts);
  if (moved.onnx + moved.checkpoints > 0) log(`moved ${moved.onnx} ONNX file(s) and ${moved.checkpoints} checkpoint(s) from ${config.dataDir} into the artifact store`);
  return artifacts;
}

const HASH_FILE = /^([0-9a-f]{64})\.bin$/;
const VERSION_FILE = /^\d+\.onnx$/;

/**
 * Moves what earlier versions kept under DATA_DIR into the artifact store: ONNX files from
 * `models/<modelId>/<version>.onnx` (now addressed by their SHA-256), and, when the store is not these very
 * files, checkpoints from `checkpoints/<2 hex>/<address>.bin`. Each is put into the store, then its file
 * deleted (unlink + directory fsync), so that nothing lives in two places and a later deletion (retirement)
 * reaches every copy. Safe to run in several processes at once, and again after a crash.
 */
export async function moveLegacyArtifacts(config: ArtifactConfig, dataDir: string, artifacts: ArtifactStore): Promise<{ onnx: number; checkpoints: number }> {
  let onnx = 0;
  let checkpoints = 0;
  for (const model of await listDir(join(dataDir, 'models'))) {
    for (const name of (await listDir(join(dataDir, 'models', model))).filter((n) => VERSION_FILE.test(n))) {
      const file = join(dataDir, 'models', model, name);
      const bytes = await readIfThere(file);
      if (bytes === undefined) continue;
      await artifacts.put({ kind: 'onnx', address: createHash('sha256').update(bytes).digest('hex') }, bytes);
      await removeFileDurably(file);
      onnx++;
    }
  }
  // The file store keeps checkpoints where they always were.
  if (config.store !== 'files') {
    for (const prefix of await listDir(join(dataDir, 'checkpoints'))) {
      for (const name of await listDir(join(dataDir, 'checkpoints', prefix))) {
        const match = HASH_FILE.exec(name);
        if (!match) continue;
        const file = join(dataDir, 'checkpoints', prefix, name);
        const bytes = await readIfThere(file);
        if (bytes === undefined) continue;
        await artifacts.put({ kind: 'checkpoint', address: match[1] }, bytes);
        await removeFileDurably(file);
        checkpoints++;
      }
    }
  }
  return { onnx, checkpoints };
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return await fs.readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT' || (error as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
    throw error;
  }
}

async function readIfThere(file: string): Promise<Uint8Array | undefined> {
  try {
    return new Uint8Array(await fs.readFile(file));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}
