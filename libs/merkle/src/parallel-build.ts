// Building a MerkleTree from leaf data on several threads (Node only: worker_threads, loaded lazily so
// that bundling this library for browsers does not pull it in).
//
// The leaves are cut into chunks of 2^chunkLevel; worker threads take chunks from a shared counter, hash
// their leaves and every complete node inside them into shared level arrays; the levels above the chunks
// are hashed on the calling thread at the end.
import { bitLength } from './bits';
import { HASH_SIZE, LEAF_HASH_PREFIX, NODE_HASH_PREFIX, hashLevelInto, sha256Into } from './hash';
import { MerkleTree } from './tree';

export interface ParallelBuildOptions {
  /** Worker threads; default: the machine's available parallelism. */
  threads?: number;
  /** Leaves per chunk = 2^chunkLevel; default: about 16 chunks per thread, at least 2^10 leaves each. */
  chunkLevel?: number;
}

// The worker's hashing mirrors hash.ts (SHA-256 with the RFC 9162 prefixes, node:crypto one-shot hash);
// parallel-build.spec.ts checks that both give the same trees.
const WORKER_SOURCE = `
const { workerData, parentPort } = require('node:worker_threads');
const nodeCrypto = require('node:crypto');
const digest = nodeCrypto.hash
  ? (data) => nodeCrypto.hash('sha256', data, 'latin1')
  : (data) => nodeCrypto.createHash('sha256').update(data).digest('latin1');
function write(d, out, offset) { for (let i = 0; i < ${HASH_SIZE}; i++) out[offset + i] = d.charCodeAt(i); }
const { data, offsets, levels, counter, size, chunkLevel } = workerData;
const bytes = new Uint8Array(data);
const starts = new Float64Array(offsets);
const out = levels.map((level) => new Uint8Array(level));
const next = new Int32Array(counter);
const chunk = 2 ** chunkLevel;
const nodeInput = new Uint8Array(${1 + 2 * HASH_SIZE});
nodeInput[0] = ${NODE_HASH_PREFIX};
let leafInput = new Uint8Array(1024);
for (;;) {
  const j = Atomics.add(next, 0, 1);
  const begin = j * chunk;
  if (begin >= size) break;
  const end = Math.min(begin + chunk, size);
  for (let i = begin; i < end; i++) {
    const from = starts[i], to = starts[i + 1];
    if (to - from + 1 > leafInput.length) leafInput = new Uint8Array(2 * (to - from + 1));
    leafInput[0] = ${LEAF_HASH_PREFIX};
    leafInput.set(bytes.subarray(from, to), 1);
    write(digest(leafInput.subarray(0, to - from + 1)), out[0], i * ${HASH_SIZE});
  }
  for (let l = 1; l <= chunkLevel && l < out.length; l++) {
    const first = begin / 2 ** l, last = Math.floor(end / 2 ** l);
    const below = out[l - 1], here = out[l];
    for (let i = first; i < last; i++) {
      nodeInput.set(below.subarray(2 * i * ${HASH_SIZE}, (2 * i + 2) * ${HASH_SIZE}), 1);
      write(digest(nodeInput), here, i * ${HASH_SIZE});
    }
  }
}
parentPort.postMessage('done');
`;

/** Hashes `leaves` (leaf data, not hashes) into a MerkleTree using worker threads. */
export async function buildTreeParallel(leaves: Uint8Array[], options: ParallelBuildOptions = {}): Promise<MerkleTree> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Worker } = require('node:worker_threads') as typeof import('node:worker_threads');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const os = require('node:os') as typeof import('node:os');
  const size = leaves.length;
  const threads = Math.max(1, options.threads ?? os.availableParallelism?.() ?? os.cpus().length);
  const chunkLevel =
    options.chunkLevel ?? Math.max(10, bitLength(Math.floor(size / (16 * threads))) - 1);

  // Leaf data packed into one shared buffer.
  const offsets = new Float64Array(new SharedArrayBuffer(8 * (size + 1)));
  let total = 0;
  for (let i = 0; i < size; i++) {
    offsets[i] = total;
    total += leaves[i].length;
  }
  offsets[size] = total;
  const data = new Uint8Array(new SharedArrayBuffer(Math.max(total, 1)));
  for (let i = 0; i < size; i++) data.set(leaves[i], offsets[i]);

  const levels: Uint8Array[] = [];
  for (let k = 0; k < Math.max(1, bitLength(size)); k++) {
    const count = Math.floor(size / 2 ** k);
    levels.push(new Uint8Array(new SharedArrayBuffer(Math.max(count, 1) * HASH_SIZE), 0, count * HASH_SIZE));
  }
  const counter = new Int32Array(new SharedArrayBuffer(4));

  const workers = Array.from(
    { length: Math.min(threads, Math.ceil(size / 2 ** chunkLevel)) },
    () =>
      new Worker(WORKER_SOURCE, {
        eval: true,
        workerData: {
          data: data.buffer,
          offsets: offsets.buffer,
          levels: levels.map((level) => level.buffer),
          counter: counter.buffer,
          size,
          chunkLevel,
        },
      }),
  );
  try {
    await Promise.all(
      workers.map(
        (worker) =>
          new Promise<void>((resolve, reject) => {
            worker.once('message', () => resolve());
            worker.once('error', reject);
            worker.once('exit', (code) => reject(new Error(`merkle build worker exited with code ${code}`)));
          }),
      ),
    );
  } finally {
    await Promise.all(workers.map((worker) => worker.terminate()));
  }

  // The levels above the chunks.
  for (let l = chunkLevel + 1; l < levels.length; l++) {
    hashLevelInto(levels[l - 1], 0, levels[l].length / HASH_SIZE, levels[l], 0);
  }
  return MerkleTree.fromLevels(levels, size);
}

/** The same tree on the calling thread: hashes each leaf, then every level. */
export function buildTree(leaves: Uint8Array[]): MerkleTree {
  const level0 = new Uint8Array(leaves.length * HASH_SIZE);
  let input = new Uint8Array(1024);
  leaves.forEach((leaf, i) => {
    if (leaf.length + 1 > input.length) input = new Uint8Array(2 * (leaf.length + 1));
    input[0] = LEAF_HASH_PREFIX;
    input.set(leaf, 1);
    sha256Into(input.subarray(0, leaf.length + 1), level0, i * HASH_SIZE);
  });
  return MerkleTree.fromLevel0(level0, leaves.length);
}
