// Builds the regulator portal: `npm run build:portal` (vite build --config apps/portal/vite.config.ts) writes
// apps/portal/dist, which the service serves at /portal. Everything is bundled: no CDN, no external font.
import { resolve } from 'node:path';
import { defineConfig, type Plugin } from 'vite';

const REPO_ROOT = resolve(__dirname, '..', '..');
const LIBS = ['merkle', 'events', 'ledger', 'chain', 'unlearning', 'verifier', 'redact'];
const MERKLE_SRC = resolve(REPO_ROOT, 'libs', 'merkle', 'src');

/**
 * libs/merkle hashes through ./digest (node:crypto); in the browser the same export comes from
 * ./digest.browser (@noble/hashes' synchronous SHA-256), since every proof function is synchronous.
 */
function browserDigest(): Plugin {
  return {
    name: 'lethe-browser-digest',
    enforce: 'pre',
    resolveId(source, importer) {
      if (!importer) return null;
      const resolved = resolve(importer, '..', source);
      if (resolved === resolve(MERKLE_SRC, 'digest') || resolved === resolve(MERKLE_SRC, 'digest.ts')) {
        return resolve(MERKLE_SRC, 'digest.browser.ts');
      }
      return null;
    },
  };
}

export default defineConfig({
  root: __dirname,
  base: '/portal/',
  // The portal reads no VITE_* variables; nothing from the environment ends up in the bundle.
  envPrefix: 'LETHE_PORTAL_PUBLIC_',
  publicDir: false,
  plugins: [browserDigest()],
  resolve: {
    alias: LIBS.map((name) => ({ find: `@lethe/${name}`, replacement: resolve(REPO_ROOT, 'libs', name, 'src', 'index.ts') })),
  },
  build: {
    outDir: resolve(__dirname, 'dist'),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    chunkSizeWarningLimit: 2000,
  },
  logLevel: 'warn',
});
