// The reliability load reads the service's memory through its inspector and forces its garbage collections
// there (reliability/lib/inspector.ts), and splits its RSS by glibc's share (reliability/lib/proc-memory.ts):
// checked here on a child Node process that holds, then drops, a known amount of memory.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { INSPECT_FLAG, InspectorSession, MemoryUsage, inspectorUrl } from '../../reliability/lib/inspector';
import { flatnessFailures } from '../../reliability/load';
import { residentBreakdown } from '../../reliability/lib/proc-memory';

describe('the reliability suite reading a process’s memory', () => {
  it('reads process.memoryUsage() through the inspector and a forced GC frees what nothing holds', async () => {
    const child = spawn(process.execPath, [INSPECT_FLAG, '-e', 'setInterval(() => {}, 1000)'], { stdio: ['ignore', 'ignore', 'pipe'] });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    let stderr = '';
    try {
      const url = await new Promise<string>((resolve, reject) => {
        child.stderr!.on('data', (d) => {
          stderr += d;
          const found = inspectorUrl(stderr);
          if (found) resolve(found);
        });
        child.on('exit', () => reject(new Error(`the child exited before its inspector listened: ${stderr}`)));
      });
      const session = await InspectorSession.connect(url);
      try {
        await session.collectGarbage();
        const empty = await session.memory();
        // About 55 MB of JS heap (half a million arrays of 8 doubles, ~110 bytes each), held by a global.
        await session.send('Runtime.evaluate', { expression: 'globalThis.held = Array.from({ length: 5e5 }, (_, i) => [i, i, i, i, i, i, i, i].map((n) => n + 0.5)); 0' });
        await session.collectGarbage();
        const holding = await session.memory();
        expect(holding.heapUsed - empty.heapUsed).toBeGreaterThan(40);
        expect(holding.rss).toBeGreaterThan(holding.heapUsed);
        // Control: dropped, the same forced GC frees it.
        await session.send('Runtime.evaluate', { expression: 'globalThis.held = undefined; 0' });
        await session.collectGarbage();
        const dropped = await session.memory();
        expect(holding.heapUsed - dropped.heapUsed).toBeGreaterThan(40);

        const resident = residentBreakdown(child.pid!)!;
        const vmRss = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]) / 1024;
        const total = resident.brk + resident.arenas + resident.otherAnonymous + resident.files;
        expect(resident.files).toBeGreaterThan(1); // the node binary at least
        expect(total).toBeGreaterThan(vmRss * 0.9);
        expect(total).toBeLessThan(vmRss * 1.1);
      } finally {
        session.close();
      }
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
  });

  it("the load part's flatness checks fail on growth past their margins, each naming what it compared", () => {
    const reading = (rss: number, heapUsed: number): MemoryUsage => ({ rss, heapUsed, heapTotal: heapUsed, external: 4, arrayBuffers: 1 });
    const before = reading(170, 64);
    const all = { rss: true, warm: true };
    // The full-size run's readings pass (176 -> 204 -> 211 MB, heap 64 -> 69 MB).
    expect(flatnessFailures({ before: reading(176, 64), warm: reading(204, 73), after: reading(211, 69) }, all)).toEqual([]);
    expect(flatnessFailures({ before, warm: reading(200, 70), after: reading(260, 70) }, all)).toEqual([expect.stringMatching(/^RSS not flat: 260 MB .* 170 MB before/), expect.stringMatching(/^RSS grew with the load: 260 MB .* 200 MB after its first fifth/)]);
    expect(flatnessFailures({ before, warm: reading(180, 70), after: reading(220, 70) }, all)).toEqual([expect.stringMatching(/^RSS grew with the load/)]);
    expect(flatnessFailures({ before, warm: reading(180, 70), after: reading(220, 70) }, { rss: true, warm: false })).toEqual([]);
    expect(flatnessFailures({ before, warm: reading(180, 70), after: reading(190, 80) }, all)).toEqual([expect.stringMatching(/^JS heap not flat: 80 MB .* 64 MB/)]);
    // With heap snapshots taken RSS is not judged, the heap still is.
    expect(flatnessFailures({ before, warm: reading(400, 70), after: reading(500, 80) }, { rss: false, warm: true })).toEqual([expect.stringMatching(/^JS heap/)]);
  });
});
