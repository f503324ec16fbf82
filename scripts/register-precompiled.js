// Runs the TypeScript sources as scripts/register.js does, from JavaScript transpiled ahead of time: every .ts
// file required is read from LETHE_PRECOMPILED_DIR, where precompileSources() (test/support/precompile.ts) wrote
// it with ts-node's own compiler and register.js's options, instead of being transpiled again at each start.
// The modules keep their source paths (__dirname, stack traces through the inline source maps with Node's
// --enable-source-maps) and the @lethe/* aliases resolve as with register.js. A .ts file that was not
// precompiled stops the process: it runs only the code compiled for it.
const { existsSync, readFileSync } = require('fs');
const { join, relative } = require('path');

const root = join(__dirname, '..');
const dir = process.env.LETHE_PRECOMPILED_DIR;
if (!dir || !existsSync(join(dir, 'manifest.json'))) {
  throw new Error(`scripts/register-precompiled.js: LETHE_PRECOMPILED_DIR (${dir ?? 'unset'}) holds no precompiled sources (manifest.json)`);
}
const compiled = new Set(JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')).files);

require.extensions['.ts'] = (module, filename) => {
  const path = relative(root, filename);
  if (!compiled.has(path)) throw new Error(`${path} was not precompiled into ${dir}; only the sources compiled for this run may run`);
  module._compile(readFileSync(join(dir, `${path}.js`), 'utf8'), filename);
};
require('tsconfig-paths').register();
