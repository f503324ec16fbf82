// Building a MerkleTree from leaf data on several threads (Node only: worker_threads is loaded lazily, so
// bundling this library for browsers does not pull it in).
//
// The leaves are cut into chunks of 2^chunkLevel. The calling thread and threads - 1 workers take chunks
// from a shared counter; each hashes a chunk's leaves and every complete node inside it into shared level
// arrays. The few levels above the chunks are hashed on the calling thread at the end.
import { bitLength } from './bits';
import { MerkleError } from './errors';
import { digestLatin1 } from './digest';
import { HASH_SIZE, LEAF_HASH_PREFIX, NODE_HASH_PREFIX, isBytes, sha256Into } from './hash';
import { MerkleTree } from './tree';

export interface ParallelBuildOptions {
  /** Threads, the calling one included; default: the machine's available parallelism. */
  threads?: number;
  /** Leaves per chunk = 2^chunkLevel; default: about 16 chunks per thread, at least 2^10 leaves each. */
  chunkLevel?: number;
}

interface SharedBuild {
  data: SharedArrayBuffer;
  offsets: SharedArrayBuffer;
  levels: SharedArrayBuffer[];
  counter: SharedArrayBuffer;
  size: number;
  chunkLevel: number;
}

// The chunk loop, as JavaScript source so that the workers and the calling thread run the same code. It
// hashes with the `digest` it is given (digest.ts's digestLatin1 on the calling thread; the same node:crypto
// one-shot call in the workers) and the RFC 9162 prefixes of hash.ts. parallel-build.spec.ts checks that it
// builds the same trees as MerkleTree.fromLeafHashes.
const CHUNK_LOOP = `
const bytes = new Uint8Array(shared.data);
const starts = new Float64Array(shared.offsets);
const out = shared.levels.map((level) => new Uint8Array(level));
const next = new Int32Array(shared.counter);
const { size, chunkLevel } = shared;
const chunk = 2 ** chunkLevel;
const nodeInput = new Uint8Array(${1 + 2 * HASH_SIZE});
nodeInput[0] = ${NODE_HASH_PREFIX};
const write = (d, to, offset) => { for (let i = 0; i < ${HASH_SIZE}; i++) to[offset + i] = d.charCodeAt(i); };
for (;;) {
  const begin = Atomics.add(next, 0, 1) * chunk;
  if (begin >= size) break;
  const end = Math.min(begin + chunk, size);
  // bytes[starts[i] .. starts[i + 1]) is leaf i with its prefix already in front.
  for (let i = begin; i < end; i++) write(digest(bytes.subarray(starts[i], starts[i + 1])), out[0], i * ${HASH_SIZE});
  for (let l = 1; l <= chunkLevel && l < out.length; l++) {
    const below = out[l - 1], here = out[l];
    for (let i = begin / 2 ** l, last = Math.floor(end / 2 ** l); i < last; i++) {
      nodeInput.set(below.subarray(2 * i * ${HASH_SIZE}, (2 * i + 2) * ${HASH_SIZE}), 1);
      write(digest(nodeInput), here, i * ${HASH_SIZE});
    }
  }
}
`;

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const nodeCrypto = require('node:crypto');
const digest = nodeCrypto.hash
  ? (data) => nodeCrypto.hash('sha256', data, 'latin1')
  : (data) => nodeCrypto.createHash('sha256').update(data).digest('latin1');
parentPort.once('message', (shared) => {
${CHUNK_LOOP}
parentPort.postMessage('done');
});
`;

type ChunkLoop = (shared: SharedBuild, digest: (data: Uint8Array) => string) => void;
let runChunks: ChunkLoop | undefined;

/** Hashes `leaves` (leaf data, not hashes) into a MerkleTree on several threads. */
export async function buildTreeParallel(leaves: Uint8Array[], options: ParallelBuildOptions = {}): Promise<MerkleTree> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Worker } = require('node:worker_threads') as typeof import('node:worker_threads');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const os = require('node:os') as typeof import('node:os');
  const size = leaves.length;
  const threads = Math.max(1, options.threads ?? os.availableParallelism?.() ?? os.cpus().length);
  const chunkLevel = options.chunkLevel ?? Math.max(10, bitLength(Math.floor(size / (16 * threads))) - 1);

  // Workers start (tens of milliseconds) while the leaves are packed; they wait for the shared buffers.
  const chunks = Math.ceil(size / 2 ** chunkLevel);
  const workers = Array.from({ length: Math.min(threads, chunks) - 1 }, () => new Worker(WORKER_SOURCE, { eval: true }));

  const done = workers.map(
    (worker) =>
      new Promise<void>((resolve, reject) => {
        worker.once('message', () => resolve());
        worker.once('error', reject);
        worker.once('exit', (code) => reject(new Error(`merkle build worker exited with code ${code}`)));
      }),
  );
  const allDone = Promise.all(done);
  allDone.catch(() => undefined); // awaited below; this keeps a failure before then from going unhandled
  let levels: Uint8Array[];
  try {
    // The leaves packed into one shared buffer, each as the input of its leaf hash: 0x00 || data.
    const offsets = new Float64Array(new SharedArrayBuffer(8 * (size + 1)));
    let total = 0;
    for (let i = 0; i < size; i++) {
      if (!isBytes(leaves[i])) {
        throw new MerkleError('INVALID_ARGUMENT', `leaves[${i}] is not a Uint8Array`, { field: `leaves[${i}]` });
      }
      offsets[i] = total;
      total += 1 + leaves[i].length;
    }
    offsets[size] = total;
    const data = new Uint8Array(new SharedArrayBuffer(Math.max(total, 1)));
    for (let i = 0; i < size; i++) {
      data[offsets[i]] = LEAF_HASH_PREFIX;
      data.set(leaves[i], offsets[i] + 1);
    }

    // levels[k] holds floor(size / 2^k) hashes.
    levels = [];
    for (let k = 0; k < Math.max(1, bitLength(size)); k++) {
      const count = Math.floor(size / 2 ** k);
      levels.push(new Uint8Array(new SharedArrayBuffer(Math.max(count, 1) * HASH_SIZE), 0, count * HASH_SIZE));
    }
    const shared: SharedBuild = {
      data: data.buffer as SharedArrayBuffer,
      offsets: offsets.buffer as SharedArrayBuffer,
      levels: levels.map((level) => level.buffer as SharedArrayBuffer),
      counter: new SharedArrayBuffer(4),
      size,
      chunkLevel,
    };

    for (const worker of workers) worker.postMessage(shared);
    // This thread takes chunks too.
    runChunks ??= new Function('shared', 'digest', CHUNK_LOOP) as ChunkLoop;
    runChunks(shared, digestLatin1);
    await allDone;
  } finally {
    await Promise.all(workers.map((worker) => worker.terminate()));
  }

  // The levels above the chunks.
  const nodeInput = new Uint8Array(1 + 2 * HASH_SIZE);
  nodeInput[0] = NODE_HASH_PREFIX;
  for (let l = chunkLevel + 1; l < levels.length; l++) {
    const below = levels[l - 1];
    for (let i = 0; i < levels[l].length / HASH_SIZE; i++) {
      nodeInput.set(below.subarray(2 * i * HASH_SIZE, (2 * i + 2) * HASH_SIZE), 1);
      sha256Into(nodeInput, levels[l], i * HASH_SIZE);
    }
  }
  return MerkleTree.fromLevels(levels, size);
}

/** The same tree on the calling thread: hashes each leaf, then every level. */
export function buildTree(leaves: Uint8Array[]): MerkleTree {
  const level0 = new Uint8Array(leaves.length * HASH_SIZE);
  let input = new Uint8Array(1024);
  leaves.forEach((leaf, i) => {
    if (!isBytes(leaf)) {
      throw new MerkleError('INVALID_ARGUMENT', `leaves[${i}] is not a Uint8Array`, { field: `leaves[${i}]` });
    }
    if (leaf.length + 1 > input.length) input = new Uint8Array(2 * (leaf.length + 1));
    input[0] = LEAF_HASH_PREFIX;
    input.set(leaf, 1);
    sha256Into(input.subarray(0, leaf.length + 1), level0, i * HASH_SIZE);
  });
  return MerkleTree.fromLevel0(level0, leaves.length);
}
