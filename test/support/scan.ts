// The erasure scans: every byte of every file under a directory searched for the forms a sample's data would
// take on disk (its identifiers as UTF-8, a feature as decimal text and as float64 / float32 little-endian bytes).
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

/** One thing to look for: a name for the report and its bytes. */
export interface Needle {
  name: string;
  bytes: Buffer;
}

export interface Hit {
  /** Relative to the scanned root. */
  file: string;
  needle: string;
  offset: number;
}

/** What marks a subject's samples: identifiers, and feature values that occur nowhere else. */
export interface Markers {
  /** subjectId and externalIds, each searched as UTF-8. */
  texts: string[];
  /** A feature value, searched as its shortest decimal text and its float64 little-endian bytes. */
  feature: number;
  /** Consecutive feature values, searched as float32 little-endian bytes (how a float32 matrix would hold them). */
  float32Run?: number[];
}

export function float64Bytes(value: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(value);
  return b;
}

export function float32Bytes(values: number[]): Buffer {
  const b = Buffer.alloc(4 * values.length);
  values.forEach((v, i) => b.writeFloatLE(v, 4 * i));
  return b;
}

/**
 * The needles of a subject's markers. A single float32 value (4 bytes) is not searched alone: 4 given bytes
 * turn up by chance in some hundred megabytes of WAL and table files; a run of consecutive values is what a
 * float32 copy of the features would hold, and is as unlikely to occur by chance as the 8 bytes of a float64.
 */
export function needlesOf(markers: Markers): Needle[] {
  const needles: Needle[] = markers.texts.map((t) => ({ name: `text ${JSON.stringify(t)}`, bytes: Buffer.from(t, 'utf8') }));
  needles.push({ name: `feature ${markers.feature} as text`, bytes: Buffer.from(String(markers.feature), 'utf8') });
  needles.push({ name: `feature ${markers.feature} as float64 LE`, bytes: float64Bytes(markers.feature) });
  if (markers.float32Run !== undefined)
    needles.push({ name: `features ${markers.float32Run.join(', ')} as float32 LE`, bytes: float32Bytes(markers.float32Run) });
  return needles;
}

/** Every regular file under `root`, recursively (symbolic links are not followed). */
export async function listFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string) => {
    for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.isFile()) out.push(path);
    }
  };
  await walk(root);
  return out;
}

/** Every occurrence of every needle in the files (read whole, chunk by chunk with an overlap, so no hit is split). */
export async function scanFiles(files: string[], needles: Needle[], root: string, chunk = 8 * 1024 * 1024): Promise<Hit[]> {
  const hits: Hit[] = [];
  const set = new NeedleSet(needles);
  const overlap = Math.max(...needles.map((n) => n.bytes.length)) - 1;
  // One buffer for every file: zero-filling 8 MB per file cost seconds on a DATA_DIR of a thousand small files.
  const buffer = Buffer.alloc(chunk + overlap);
  for (const file of files) {
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(file, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue; // removed while scanning
      throw error;
    }
    try {
      let carried = 0;
      let base = 0; // file offset of buffer[0]
      for (;;) {
        const { bytesRead } = await handle.read(buffer, carried, chunk, null);
        const length = carried + bytesRead;
        const view = buffer.subarray(0, length);
        for (const { needle, at } of set.find(view)) {
          // A hit wholly inside the carried part was found in the previous round.
          if (at + needle.bytes.length <= carried) continue;
          hits.push({ file: relative(root, file), needle: needle.name, offset: base + at });
        }
        if (bytesRead === 0) break;
        carried = Math.min(overlap, length);
        view.copy(buffer, 0, length - carried, length);
        base += length - carried;
      }
    } finally {
      await handle.close();
    }
  }
  return hits;
}

/** Scans every file under `root`. */
export async function scanTree(root: string, needles: Needle[]): Promise<Hit[]> {
  return scanFiles(await listFiles(root), needles, root);
}

/** Scans a text (a captured log, rows as text) as one more file, in UTF-8. */
export function scanText(name: string, text: string, needles: Needle[]): Hit[] {
  return scanBuffer(name, Buffer.from(text, 'utf8'), needles);
}

/** Scans bytes held in memory (opened payloads) as one more file. */
export function scanBuffer(name: string, bytes: Buffer, needles: Needle[]): Hit[] {
  return [...new NeedleSet(needles).find(bytes)].map(({ needle, at }) => ({ file: name, needle: needle.name, offset: at }));
}

/** How many first bytes of a needle group it: needles sharing them are looked for in one pass. */
const PREFIX_BYTES = 4;

/**
 * Needles grouped by their first bytes, so that a buffer is searched once per distinct prefix instead of once
 * per needle (the crash trials look for hundreds of identifiers that share a prefix: one pass instead of
 * hundreds); at each occurrence of a prefix, every needle of the group is compared in full. It finds exactly
 * what searching for each needle on its own finds (scan.spec.ts compares the two).
 */
export class NeedleSet {
  /** By prefix (latin1): the group's needles by length, then by their bytes (latin1). */
  private readonly groups = new Map<string, { prefix: Buffer; byLength: Map<number, Map<string, Needle[]>> }>();

  constructor(needles: readonly Needle[]) {
    for (const needle of needles) {
      if (needle.bytes.length === 0) throw new Error(`needle ${needle.name} is empty`);
      const prefix = needle.bytes.subarray(0, PREFIX_BYTES);
      const key = prefix.toString('latin1');
      const group = this.groups.get(key) ?? { prefix, byLength: new Map() };
      this.groups.set(key, group);
      const sameLength = group.byLength.get(needle.bytes.length) ?? new Map<string, Needle[]>();
      group.byLength.set(needle.bytes.length, sameLength);
      const full = needle.bytes.toString('latin1');
      sameLength.set(full, [...(sameLength.get(full) ?? []), needle]);
    }
  }

  /** Every occurrence of every needle in `bytes`. */
  *find(bytes: Buffer): Generator<{ needle: Needle; at: number }> {
    for (const { prefix, byLength } of this.groups.values()) {
      for (let at = bytes.indexOf(prefix); at !== -1; at = bytes.indexOf(prefix, at + 1)) {
        for (const [length, byBytes] of byLength) {
          if (at + length > bytes.length) continue;
          for (const needle of byBytes.get(bytes.toString('latin1', at, at + length)) ?? []) yield { needle, at };
        }
      }
    }
  }
}

/** Where PostgreSQL keeps this database's relation files (undefined when its data directory is on another machine). */
export async function relationDir(dataSource: { query: (sql: string) => Promise<unknown> }): Promise<string | undefined> {
  const [{ data_directory: dataDir }] = (await dataSource.query(`SELECT current_setting('data_directory') AS data_directory`)) as { data_directory: string }[];
  const [{ oid }] = (await dataSource.query(`SELECT oid FROM pg_database WHERE datname = current_database()`)) as { oid: number }[];
  const dir = join(dataDir, 'base', String(oid));
  return existsSync(dir) ? dir : undefined;
}

/** The files among `files` in which `needle` occurs (a file removed meanwhile, e.g. a recycled WAL segment, holds nothing). */
export function filesHolding(files: string[], needle: Buffer): string[] {
  return files.filter((file) => {
    try {
      return readFileSync(file).includes(needle);
    } catch {
      return false;
    }
  });
}

/** Row timestamps as PostgreSQL prints them ("2026-12-05 07:59:56.359051+00"): digits that look like data by chance. */
const TIMESTAMP = /\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}(:\d{2})?|Z)?/g;

/**
 * Every row of every table of the database's schemas (not PostgreSQL's catalogs) as text, one line per row
 * prefixed with its table, row timestamps masked: what a plaintext search of the stored rows reads.
 */
export async function databaseText(dataSource: { query: (sql: string) => Promise<unknown> }): Promise<{ tables: string[]; text: string }> {
  const tables = (await dataSource.query(
    `SELECT format('%I.%I', table_schema, table_name) AS name FROM information_schema.tables
      WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`,
  )) as { name: string }[];
  const lines: string[] = [];
  for (const { name } of tables) {
    const rows = (await dataSource.query(`SELECT t::text AS row FROM ${name} t`)) as { row: string }[];
    for (const { row } of rows) lines.push(`${name} ${row.replace(TIMESTAMP, '<timestamp>')}`);
  }
  return { tables: tables.map((t) => t.name), text: lines.join('\n') };
}
