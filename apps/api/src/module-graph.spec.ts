import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

/**
 * Dependencies between the folders of apps/api/src point one way: a folder that another imports never
 * imports it back, directly or through others. Files at the top (main.ts, worker.ts, app.module.ts) wire
 * everything and belong to no folder.
 */

/** Relative imports and re-exports of a source file: `from './x'`, `import './x'`, `import('./x')`. */
const RELATIVE_IMPORT = /\bfrom\s+'(\.{1,2}\/[^']*)'|\bimport\s*\(?\s*'(\.{1,2}\/[^']*)'/g;

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.spec.ts') ? [path] : [];
  });
}

/** The folder a file is in (its first path segment below `root`), or null for a file at the top. */
function folderOf(root: string, file: string): string | null {
  const parts = relative(root, file).split(sep);
  return parts.length > 1 ? parts[0] : null;
}

/** folder -> folder it imports -> one file that does. */
function folderImports(root: string): Map<string, Map<string, string>> {
  const edges = new Map<string, Map<string, string>>();
  for (const file of sourceFiles(root)) {
    const from = folderOf(root, file);
    if (from === null) continue;
    for (const match of readFileSync(file, 'utf8').matchAll(RELATIVE_IMPORT)) {
      const to = folderOf(root, resolve(dirname(file), match[1] ?? match[2]));
      if (to === null || to === from) continue;
      if (!edges.has(from)) edges.set(from, new Map());
      if (!edges.get(from)!.has(to)) edges.get(from)!.set(to, relative(root, file));
    }
  }
  return edges;
}

/** A cycle of the graph as a path that ends where it starts (`['a', 'b', 'a']`), or null when it has none. */
function findCycle(edges: Map<string, Iterable<string>>): string[] | null {
  const done = new Set<string>();
  const path: string[] = [];
  const visit = (node: string): string[] | null => {
    const at = path.indexOf(node);
    if (at >= 0) return [...path.slice(at), node];
    if (done.has(node)) return null;
    path.push(node);
    for (const next of edges.get(node) ?? []) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    path.pop();
    done.add(node);
    return null;
  };
  for (const node of edges.keys()) {
    const cycle = visit(node);
    if (cycle) return cycle;
  }
  return null;
}

describe('dependencies between the API folders', () => {
  it('findCycle finds a cycle through several folders, and none in a graph without one', () => {
    const graph = (pairs: [string, string[]][]) => new Map(pairs);
    expect(findCycle(graph([['a', ['b']], ['b', ['c']], ['c', ['d', 'a']]]))).toEqual(['a', 'b', 'c', 'a']);
    expect(findCycle(graph([['x', ['a']], ['a', ['b']], ['b', ['a']]]))).toEqual(['a', 'b', 'a']);
    expect(findCycle(graph([['a', ['b', 'c']], ['b', ['c']], ['c', []]]))).toBeNull();
  });

  it('reads the imports of apps/api/src (a control: the worker imports the unlearning pass)', () => {
    const edges = folderImports(__dirname);
    expect(edges.get('worker')?.get('unlearning')).toBe(join('worker', 'job.worker.ts'));
    expect(edges.get('unlearning')?.has('models')).toBe(true);
  });

  it('has no cycle between the folders of apps/api/src', () => {
    const edges = folderImports(__dirname);
    const cycle = findCycle(new Map([...edges].map(([from, to]) => [from, [...to.keys()]])));
    const described = cycle?.slice(1).map((to, i) => `${cycle[i]} -> ${to} (${edges.get(cycle[i])!.get(to)})`);
    expect(described).toBeUndefined();
  });
});
