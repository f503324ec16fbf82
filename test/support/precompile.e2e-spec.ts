// The reliability suite starts the service from sources transpiled once (precompileSources) rather than by ts-node
// at each start: the modules must run as they do under scripts/register.js, keep their source paths, and nothing
// that was not compiled for the run may run.
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PrecompiledSources, precompileSources } from './precompile';

const REPO_ROOT = join(__dirname, '..', '..');

/** What `node <start> -e script` prints from the repository's root: its exit status, stdout and stderr. */
function run(start: string[], script: string, env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [...start, '-e', script], { cwd: REPO_ROOT, env: { ...process.env, ...env }, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout.trim(), stderr: r.stderr };
}

describe('the service started from precompiled sources', () => {
  let compiled: PrecompiledSources;

  beforeAll(() => {
    compiled = precompileSources('lethe-precompile-test-');
  });

  afterAll(() => rmSync(compiled.dir, { recursive: true, force: true }));

  const precompiled = () => ['--enable-source-maps', '-r', './scripts/register-precompiled.js'];
  const env = () => ({ LETHE_PRECOMPILED_DIR: compiled.dir });

  it('compiles every module of the service (apps/ and libs/, not tests) as ts-node does', () => {
    const { files } = JSON.parse(readFileSync(join(compiled.dir, 'manifest.json'), 'utf8')) as { files: string[] };
    expect(files).toContain('apps/api/src/main.ts');
    expect(files).toContain('libs/chain/src/repo-root.ts');
    expect(files.filter((f) => /\.(spec|e2e-spec)\.ts$/.test(f) || !/^(apps|libs)\//.test(f))).toEqual([]);
    expect(compiled.files).toBe(files.length);
    // Byte for byte what ts-node, as scripts/register.js sets it up, makes of the file.
    const file = join(REPO_ROOT, 'libs/merkle/src/index.ts');
    const tsNode = require('ts-node').create({ transpileOnly: true, project: join(REPO_ROOT, 'tsconfig.json') });
    expect(readFileSync(join(compiled.dir, 'libs/merkle/src/index.ts.js'), 'utf8')).toBe(tsNode.compile(readFileSync(file, 'utf8'), file));
  });

  it('runs the same code as ts-node, with the @lethe/* aliases and each module at its source path', () => {
    // A Merkle root of fixed leaves and the repository root the chain library finds from its __dirname.
    const script =
      "const { CompactRange, hashLeaf, toHex } = require('@lethe/merkle'); const r = CompactRange.empty();" +
      "r.append(Array.from({ length: 7 }, (_, i) => hashLeaf(Buffer.from('leaf ' + i))));" +
      "console.log(JSON.stringify({ root: toHex(r.root()), repo: require('./libs/chain/src/repo-root').resolveRepoRoot(), ts: Object.keys(require.cache).filter((f) => f.endsWith('.ts')).length }))";
    const fromTsNode = run(['-r', './scripts/register.js'], script);
    const fromCompiled = run(precompiled(), script, env());
    expect(fromTsNode).toMatchObject({ status: 0 });
    expect(fromCompiled).toMatchObject({ status: 0 });
    const [a, b] = [JSON.parse(fromTsNode.stdout), JSON.parse(fromCompiled.stdout)];
    expect(b).toEqual(a);
    expect(b.repo).toBe(REPO_ROOT);
    expect(b.ts).toBeGreaterThan(1);
  });

  it('refuses a .ts file that was not compiled for the run, and a start without the folder', () => {
    const outside = run(precompiled(), "require('./test/support/probe.ts')", env());
    expect(outside.status).not.toBe(0);
    expect(outside.stderr).toContain('test/support/probe.ts was not precompiled');
    const without = run(precompiled(), '0', { LETHE_PRECOMPILED_DIR: '' });
    expect(without.status).not.toBe(0);
    expect(without.stderr).toContain('holds no precompiled sources');
    // The control: the same folder lets a compiled module load.
    expect(run(precompiled(), "require('./libs/merkle/src/index.ts')", env()).status).toBe(0);
  });
});
