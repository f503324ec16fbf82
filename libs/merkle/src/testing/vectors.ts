// Loading the shared RFC 9162 test vectors (../shared/testdata/rfc9162, from transparency-dev/merkle).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

export const VECTORS_DIR = resolve(__dirname, '../../../../../shared/testdata/rfc9162');

export interface VectorFile<T> {
  /** Path below the vectors folder, e.g. `inclusion/1/wrong-leaf.json`. */
  name: string;
  vector: T;
}

export interface InclusionVector {
  leafIdx: number;
  treeSize: number;
  root: string;
  leafHash: string;
  proof: string[] | null;
  desc: string;
  wantErr: boolean;
}

export interface ConsistencyVector {
  size1: number;
  size2: number;
  root1: string;
  root2: string;
  proof: string[] | null;
  desc: string;
  wantErr: boolean;
}

export function vectorsPresent(): boolean {
  return existsSync(VECTORS_DIR);
}

/** Every .json file below `kind`, walked recursively, sorted by name. */
export function loadVectors<T>(kind: 'inclusion' | 'consistency'): VectorFile<T>[] {
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir).sort()) {
      const path = join(dir, entry);
      if (statSync(path).isDirectory()) walk(path);
      else if (entry.endsWith('.json')) files.push(path);
    }
  };
  walk(join(VECTORS_DIR, kind));
  return files.map((path) => ({
    name: relative(VECTORS_DIR, path),
    vector: JSON.parse(readFileSync(path, 'utf8')) as T,
  }));
}

export function fromBase64(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, 'base64'));
}
