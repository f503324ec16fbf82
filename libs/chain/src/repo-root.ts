import { resolve } from 'node:path';

/** The monorepo root (holds hardhat.config.ts, contracts/, node_modules/). */
export function resolveRepoRoot(): string {
  return resolve(__dirname, '..', '..', '..');
}
