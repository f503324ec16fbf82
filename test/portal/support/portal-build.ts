import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const REPO_ROOT = resolve(__dirname, '..', '..', '..');

/** Builds the portal as `npm run build:portal` does, into a fresh temporary folder (never a stale dist). */
export async function buildPortal(): Promise<string> {
  const outDir = mkdtempSync(join(tmpdir(), 'lethe-portal-'));
  const vite = join(REPO_ROOT, 'node_modules', 'vite', 'bin', 'vite.js');
  await new Promise<void>((resolvePromise, reject) => {
    const child = spawn(process.execPath, [vite, 'build', '--config', 'apps/portal/vite.config.ts', '--outDir', outDir, '--emptyOutDir'], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolvePromise() : reject(new Error(`vite build exited ${code}:\n${output.slice(-4000)}`))));
  });
  if (!existsSync(join(outDir, 'index.html'))) throw new Error(`vite build wrote no index.html in ${outDir}`);
  return outDir;
}

/** Debian's Chromium (CHROMIUM_PATH, /usr/bin/chromium unless set); null when it is not installed. */
export function chromiumPath(): string | null {
  const path = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
  return existsSync(path) ? path : null;
}

/** Flags for headless Chromium in a container; no browser is ever downloaded. */
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'];
