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
  const factors = growingFactorsAfter([`runtime.configureHeapForTraining(${percent ?? ''});`]);
  return factors[factors.length - 1];
}

/**
 * The growing factor of the limit V8 sets after each of `steps` (statements run in turn, with `runtime` the
 * module), each followed by a full collection, in a fresh process holding 90 MB.
 */
function growingFactorsAfter(steps: string[]): number[] {
  const script = [
    "const runtime = require('./libs/unlearning/src/runtime');",
    'const keep = []; for (let i = 0; i < 60; i++) keep.push(new Array(200000).fill(i));',
    ...steps.map((step) => `${step} console.log('STEP'); global.gc();`),
  ].join(' ');
  const child = spawnSync(process.execPath, ['--trace-gc-verbose', '--expose-gc', '-r', './scripts/register.js', '-e', script], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  expect(child.status).toBe(0);
  // The last factor printed after each step (its collection): the limit's factor on Node 20, the factor line on Node 24.
  return child.stdout
    .split('STEP\n')
    .slice(1)
    .map((out) => {
      const factors = [...out.matchAll(/\[HeapController\] (?:Limit: .*\((\d+\.\d+)\)|factor (\d+\.\d+) based on)/g)].map((m) => Number(m[1] ?? m[2]));
      expect(factors.length).toBeGreaterThan(0);
      return factors[factors.length - 1];
    });
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

describe('holdHeapForTraining', () => {
  it("sets the training percent while a hold lasts, and the process's own (configureHeapForTraining's, else V8's) after the last", () => {
    // 50 as the process's own percent (factor 1.5), so that each step's factor is one the test sets.
    const factors = growingFactorsAfter([
      'runtime.configureHeapForTraining(50);',
      'const a = runtime.holdHeapForTraining(); const b = runtime.holdHeapForTraining();',
      'a(); a();', // one hold still lasts (a second end of the same hold does nothing)
      'b();',
    ]);
    expect(factors).toEqual([1.5, 3, 3, 1.5]);
  });

  it('gives V8 its own heuristics back (percent 0) in a process that set none', () => {
    jest.isolateModules(() => {
      const fresh = require('./runtime') as typeof import('./runtime'); // the module as a process that set nothing has it
      expect(fresh.heapGrowingPercent()).toBe(0);
      const end = fresh.holdHeapForTraining();
      expect(fresh.heapGrowingPercent()).toBe(200);
      end();
      expect(fresh.heapGrowingPercent()).toBe(0);
    });
  });
});
