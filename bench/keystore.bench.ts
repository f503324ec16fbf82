// libs/keystore: sealing and opening 200,000 sample payloads (784 float32 features + label + salt + externalId +
// subjectId, synthetic) under per-subject data keys, against SHA-256 over the same bytes (the hashing an upload
// does anyway) measured in the same run; and the FileKeyStore: create, get and destroy a data key (durable:
// fsync of the file and of the directory) against an unsynced write of the same bytes, and bytes on disk per key.
// Run: npm run bench -- keystore [--payloads 200000] [--subjects 2000] [--float64]   (--help lists the flags)
// Times are wall-clock and this process's CPU time; on a shared machine CPU time is the steadier.
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs, mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileKeyStore, createKeyId, encodeParts, openPayload, payloadAssociatedData, sealPayload } from '@lethe/keystore';
import { defineFlags, runBenchFile, type Bench, type BenchOptions } from './lib/args';
import { printTable } from './lib/table';

const flags = defineFlags({
  payloads: { type: 'integer', min: 1, default: 200_000, help: 'sample payloads sealed and opened' },
  subjects: { type: 'integer', min: 1, default: 2_000, help: 'data subjects (one data key each) the payloads belong to' },
  float64: { type: 'boolean', help: 'also payloads of 784 float64 features' },
});

const FEATURES = 784;
// Payloads are built, hashed, sealed and opened 5,000 at a time: the chunk an NDJSON upload commits at once.
const CHUNK = 5_000;

type Clock = { ms: number; cpuMs: number };
const zero = (): Clock => ({ ms: 0, cpuMs: 0 });

async function timed<T>(clock: Clock, fn: () => T | Promise<T>): Promise<T> {
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  const result = await fn();
  clock.ms += Number(process.hrtime.bigint() - start) / 1e6;
  const used = process.cpuUsage(cpu);
  clock.cpuMs += (used.user + used.system) / 1000;
  return result;
}

/** Runs `fn` over `items` with at most `width` calls in flight. */
async function inParallel<T>(items: T[], width: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

/** One sample's plaintext: features (float32 or float64 bytes), label, salt, externalId, subjectId, length-prefixed. */
function encodeSample(features: Float32Array | Float64Array, label: number, salt: Buffer, externalId: string, subjectId: string): Buffer {
  const labelBytes = Buffer.alloc(4);
  labelBytes.writeUInt32BE(label);
  return encodeParts([Buffer.from(features.buffer, features.byteOffset, features.byteLength), labelBytes, salt, externalId, subjectId]);
}

async function payloadRows(payloads: number, keys: Buffer[], width: 'float32' | 'float64'): Promise<{ rows: string[][]; bytes: number }> {
  const encode = zero();
  const hash = zero();
  const seal = zero();
  const open = zero();
  const pool = Array.from({ length: 64 }, () => {
    const f = width === 'float32' ? new Float32Array(FEATURES) : new Float64Array(FEATURES);
    for (let i = 0; i < FEATURES; i++) f[i] = Math.random();
    return f;
  });
  let bytes = 0;
  for (let from = 0; from < payloads; from += CHUNK) {
    const count = Math.min(CHUNK, payloads - from);
    const plaintexts = await timed(encode, () =>
      Array.from({ length: count }, (_, i) => {
        const n = from + i;
        const subject = n % keys.length;
        return encodeSample(pool[n % pool.length], n % 10, randomBytes(32), `sample-${n}`, `subject-${subject}`);
      }),
    );
    bytes += plaintexts.reduce((sum, p) => sum + p.length, 0);
    const commitments = await timed(hash, () => plaintexts.map((p) => createHash('sha256').update(p).digest('hex')));
    const ads = commitments.map((c) => payloadAssociatedData('bench-dataset', c));
    const sealed = await timed(seal, () => plaintexts.map((p, i) => sealPayload(keys[(from + i) % keys.length], p, ads[i])));
    const opened = await timed(open, () => sealed.map((s, i) => openPayload(keys[(from + i) % keys.length], s, ads[i])));
    if (!opened.every((o, i) => o.equals(plaintexts[i]))) throw new Error('a payload did not round-trip');
  }
  // The same calls on one payload, warm and without building 5,000 new buffers a chunk: the cost of the
  // cipher calls themselves.
  const one = encodeSample(pool[0], 1, randomBytes(32), 'sample-0', 'subject-0');
  const oneAd = payloadAssociatedData('bench-dataset', 'ab'.repeat(32));
  const oneSealed = sealPayload(keys[0], one, oneAd);
  const warmSeal = zero();
  const warmOpen = zero();
  const warm = 50_000;
  for (let i = 0; i < 5_000; i++) openPayload(keys[0], sealPayload(keys[0], one, oneAd), oneAd);
  await timed(warmSeal, () => { for (let i = 0; i < warm; i++) sealPayload(keys[0], one, oneAd); });
  await timed(warmOpen, () => { for (let i = 0; i < warm; i++) openPayload(keys[0], oneSealed, oneAd); });
  const mb = bytes / 1e6;
  const row = (name: string, c: Clock, note: string): string[] => [
    name,
    `${c.ms.toFixed(0)} ms`,
    `${c.cpuMs.toFixed(0)} ms`,
    `${((c.ms * 1000) / payloads).toFixed(2)} µs`,
    `${(mb / (c.ms / 1000)).toFixed(0)} MB/s`,
    `${(c.cpuMs / hash.cpuMs).toFixed(2)}x`,
    note,
  ];
  const warmRow = (name: string, c: Clock): string[] => [
    name,
    `${c.ms.toFixed(0)} ms`,
    `${c.cpuMs.toFixed(0)} ms`,
    `${((c.ms * 1000) / warm).toFixed(2)} µs`,
    `${((one.length * warm) / 1e6 / (c.ms / 1000)).toFixed(0)} MB/s`,
    '',
    'warm, one buffer: the cipher calls alone',
  ];
  return {
    bytes,
    rows: [
      row(`SHA-256 (baseline), ${width}`, hash, 'the commitment hash an upload computes anyway'),
      row(`seal AES-256-GCM, ${width}`, seal, `+${29} bytes/payload (version, nonce, tag)`),
      row(`open AES-256-GCM, ${width}`, open, 'decrypt + verify tag'),
      row(`encode payload, ${width}`, encode, 'building the plaintexts (random salt included), not sealing'),
      warmRow(`seal, one payload ${warm.toLocaleString('en-US')} times`, warmSeal),
      warmRow(`open, one payload ${warm.toLocaleString('en-US')} times`, warmOpen),
    ],
  };
}

export async function run({ payloads, subjects, float64 }: BenchOptions<typeof flags>): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'lethe-bench-keystore-'));
  try {
    process.stdout.write(`load average before: ${loadavg().map((l) => l.toFixed(2)).join(' ')} (2 cores shared)\n`);
    const store = await FileKeyStore.open({ dir: join(root, 'keys') });
    const ids = Array.from({ length: subjects }, () => createKeyId());

    const plain = zero();
    const plainDir = join(root, 'plain');
    await fs.mkdir(plainDir);
    const sample = randomBytes(61);
    await timed(plain, () => inParallel(ids, 1, (id) => fs.writeFile(join(plainDir, id), sample, { mode: 0o600 })));
    const create = zero();
    await timed(create, () => inParallel(ids, 1, (id) => store.createKey(id)));
    const createParallel = zero();
    const moreIds = Array.from({ length: subjects }, () => createKeyId());
    await timed(createParallel, () => inParallel(moreIds, 16, (id) => store.createKey(id)));
    for (const id of moreIds) await store.destroyKey(id);
    const get = zero();
    const keys: Buffer[] = [];
    await timed(get, () => inParallel(ids, 1, async (id) => void keys.push(await store.getKey(id))));
    const stats = await store.stats();

    const float32 = await payloadRows(payloads, keys, 'float32');
    const tables = [float32];
    if (float64) tables.push(await payloadRows(payloads, keys, 'float64'));
    const loadDuring = loadavg().map((l) => l.toFixed(2)).join(' ');
    for (const t of tables) {
      printTable(
        `${payloads.toLocaleString('en-US')} payloads of ${(t.bytes / payloads).toFixed(0)} bytes under ${subjects.toLocaleString('en-US')} subjects' keys (synthetic; load average ${loadDuring})`,
        ['operation', 'wall', 'CPU', 'per payload', 'throughput', 'CPU vs SHA-256', 'note'],
        t.rows,
      );
    }

    const destroy = zero();
    await timed(destroy, () => inParallel(ids, 1, (id) => store.destroyKey(id)));
    const perKey = (c: Clock): string => `${(c.ms / subjects).toFixed(3)} ms`;
    printTable(
      `FileKeyStore, ${subjects.toLocaleString('en-US')} keys in ${root} (load average ${loadavg().map((l) => l.toFixed(2)).join(' ')})`,
      ['operation', 'wall', 'per key', 'note'],
      [
        ['unsynced writeFile of 61 bytes (baseline)', `${plain.ms.toFixed(0)} ms`, perKey(plain), 'no fsync, no rename: what durability is measured against'],
        ['createKey, one at a time', `${create.ms.toFixed(0)} ms`, perKey(create), 'temp file + fsync, link, unlink, fsync of the directory'],
        ['createKey, 16 in flight', `${createParallel.ms.toFixed(0)} ms`, perKey(createParallel), ''],
        ['getKey (read + unwrap)', `${get.ms.toFixed(0)} ms`, perKey(get), ''],
        ['destroyKey', `${destroy.ms.toFixed(0)} ms`, perKey(destroy), 'overwrite + fdatasync, unlink, fsync of the directory'],
        ['bytes per key (file)', '', `${stats.bytes / stats.keys} B`, 'version 1 + nonce 12 + wrapped key 32 + tag 16'],
        ['bytes per key (on disk)', '', `${((stats.allocatedBytes ?? 0) / stats.keys).toFixed(0)} B`, 'allocated blocks of the key files and their directory / keys'],
      ],
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

export const bench: Bench<typeof flags> = {
  summary: 'sealing/opening sample payloads vs SHA-256 of them; data key create/get/destroy, bytes per key',
  flags,
  run,
};

if (require.main === module) runBenchFile('bench/keystore.bench.ts', bench);
