// Where a process's resident memory lies, from its /proc/<pid>/smaps (Linux): what V8 cannot see. glibc's
// malloc gives each thread that contends for it an arena of its own (up to 8 per core), each in mappings of
// 64 MB reserved address space; memory freed there is kept for the next malloc rather than returned, so
// native work spread over threads (onnxruntime's, libuv's pool) leaves resident memory behind that no GC
// frees. The main arena grows the brk heap ([heap]).
import { readFileSync } from 'node:fs';

/** Resident MB by kind of mapping. */
export interface ResidentBreakdown {
  /** The brk heap: glibc's main arena. */
  brk: number;
  /** Anonymous mappings within 64 MB-aligned arena heaps (glibc's other arenas; see arenaHeaps). */
  arenas: number;
  /** How many 64 MB arena heaps hold resident memory. */
  arenaHeaps: number;
  /** Every other anonymous mapping (V8's heap and code, large mallocs, thread stacks). */
  otherAnonymous: number;
  /** Mapped files (the binaries, shared libraries, onnxruntime's library). */
  files: number;
}

const ARENA_HEAP = 64 * 1024 * 1024;

/** The resident memory of `pid` by kind, or undefined once it is gone (or on a system without smaps). */
export function residentBreakdown(pid: number): ResidentBreakdown | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  } catch {
    return undefined;
  }
  const kb = { brk: 0, arenas: 0, otherAnonymous: 0, files: 0 };
  const heaps = new Set<number>();
  let kind: keyof typeof kb = 'otherAnonymous';
  let start = 0;
  let end = 0;
  for (const line of text.split('\n')) {
    const header = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (header) {
      start = Number.parseInt(header[1], 16);
      end = Number.parseInt(header[2], 16);
      const path = header[3];
      // A non-main arena's heap: anonymous, inside one 64 MB-aligned block (its resident head and reserved tail).
      const inArenaBlock = Math.floor(start / ARENA_HEAP) === Math.floor((end - 1) / ARENA_HEAP);
      kind = path === '[heap]' ? 'brk' : path === '' ? (inArenaBlock && start % ARENA_HEAP === 0 ? 'arenas' : 'otherAnonymous') : path.startsWith('[') ? 'otherAnonymous' : 'files';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) {
      kb[kind] += Number(rss[1]);
      if (kind === 'arenas' && Number(rss[1]) > 0) heaps.add(Math.floor(start / ARENA_HEAP));
    }
  }
  void end;
  const mb = (n: number) => n / 1024;
  return { brk: mb(kb.brk), arenas: mb(kb.arenas), arenaHeaps: heaps.size, otherAnonymous: mb(kb.otherAnonymous), files: mb(kb.files) };
}
