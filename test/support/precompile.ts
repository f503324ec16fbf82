// The service's TypeScript transpiled once, for runs that start it many times (the reliability suite restarts it
// after every kill): scripts/register.js transpiles every module again at each start (ts-node), which is most of
// a start's CPU time; scripts/register-precompiled.js runs the same output read from the folder made here.
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';

const REPO_ROOT = join(__dirname, '..', '..');
/** Where the service's modules live: every .ts file under these but tests and declarations is compiled. */
const SOURCE_ROOTS = ['apps', 'libs'];

export interface PrecompiledSources {
  /** The folder to give scripts/register-precompiled.js as LETHE_PRECOMPILED_DIR. */
  dir: string;
  files: number;
  seconds: number;
  /** This process's CPU time spent on it. */
  cpuSeconds: number;
}

function sourceFiles(dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules' && entry.name !== 'dist') sourceFiles(path, out);
    } else if (entry.name.endsWith('.ts') && !/\.(spec|e2e-spec|d)\.ts$/.test(entry.name)) {
      out.push(path);
    }
  }
  return out;
}

/**
 * Transpiles the service's sources into a fresh folder as scripts/register.js does at each start: ts-node's own
 * compiler with register.js's options (transpile only, tsconfig.json), its output (with its inline source map)
 * kept byte for byte, one `<path>.js` per `<path>` and a manifest of the paths. The process started with
 * `--enable-source-maps -r ./scripts/register-precompiled.js` then runs the same code without transpiling it.
 * The sources are read now: a later edit does not reach a process started from this folder.
 */
export function precompileSources(prefix = 'lethe-precompiled-'): PrecompiledSources {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const compiler = require('ts-node').create({ transpileOnly: true, project: join(REPO_ROOT, 'tsconfig.json') }) as {
    compile(code: string, fileName: string): string;
  };
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const files = SOURCE_ROOTS.flatMap((root) => sourceFiles(join(REPO_ROOT, root)));
  const paths: string[] = [];
  for (const file of files) {
    const path = relative(REPO_ROOT, file);
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, `${path}.js`), compiler.compile(readFileSync(file, 'utf8'), file));
    paths.push(path);
  }
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ files: paths }));
  const cpu = process.cpuUsage(cpu0);
  return { dir, files: paths.length, seconds: (performance.now() - t0) / 1000, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}
