import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { configureHeapForTraining } from './runtime';

const REPO_ROOT = join(__dirname, '..', '..', '..');

/**
 * The growing factor V8 gives the old generation's limit after the last full collection of a fresh process
 * that calls configureHeapForTraining(percent) (no argument: its default), fills 90 MB and collects: V8 prints
 * each new limit with --trace-gc-verbose as `[HeapController] Limit: old size: …, new limit: … (3.0)` (Node 20, V8 11)
 * or the factor on a line of its own as `[HeapController] factor 3.0 based on mu=…` (Node 24, V8 13).
 */
function growingFactorAfter(percent?: number): number {
  const script = [
    `require('./libs/unlearning/src/runtime').configureHeapForTraining(${percent ?? ''});`,
    'const keep = []; for (let i = 0; i < 60; i++) keep.push(new Array(200000).fill(i));',
    'global.gc();',
  ].join(' ');
  const child = spawnSync(process.execPath, ['--trace-gc-verbose', '--expose-gc', '-r', './scripts/register.js', '-e', script], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  expect(child.status).toBe(0);
  const factors = [
    ...child.stdout.matchAll(/\[HeapController\] (?:Limit: .*\((\d+\.\d+)\)|factor (\d+\.\d+) based on)/g),
  ].map((m) => Number(m[1] ?? m[2]));
  expect(factors.length).toBeGreaterThan(0);
  return factors[factors.length - 1];
}

describe('configureHeapForTraining', () => {
  it('sets a heap growing percent and refuses values V8 would misread', () => {
    expect(() => configureHeapForTraining()).not.toThrow();
    expect(() => configureHeapForTraining(0)).not.toThrow(); // 0 is V8's default (its own heuristics)
    expect(() => configureHeapForTraining(-1)).toThrow(RangeError);
    expect(() => configureHeapForTraining(1.5)).toThrow('heap growing percent must be an integer in [0, 1000], got 1.5');
  });

  it("makes V8 grow the old generation by the percent after a full collection (threefold by default)", () => {
    expect(growingFactorAfter()).toBe(3);
    expect(growingFactorAfter(50)).toBe(1.5);
  });
});
