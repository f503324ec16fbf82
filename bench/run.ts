// npm run bench [-- <suite> [flags]]     (npm run bench -- <suite> --help lists a suite's flags)
//   ledger      libs/merkle in memory (vs merkletreejs and raw hashing) + durable appends and proofs on PostgreSQL
//   anchor      gas per anchor and per event on a local Hardhat chain, vs one transaction per event
//   unlearning  SISA unlearning vs full retraining, accuracy, GFLOP/s vs the GEMM ceiling, membership inference
//   membership  the membership attack (LiRA per example) before / after a forget / a reference, with canaries, vs the loss-threshold AUC
//   methods     full retraining, SISA, approximate (finetune, NegGrad+, SCRUB), certified removal and DP-SGD on MNIST: forget time, accuracy, attack, guarantee
//   verify      lethe-audit verify-log on a large log vs just downloading and hashing it
//   portal      a receipt verified in the portal in Chromium vs the same verifyReceipt in Node
//   api         the HTTP API with 100 concurrent clients vs 1, and forget request -> anchored UNLEARN_COMPLETED
//   privacy     DP-SGD on MNIST: test accuracy at ε 0.5..8 (δ 1e-5) beside the non-private model, full and SISA
//   forget-latency  forgetting through the API (request -> new version served, job pickup, a pass's phases) vs the monolithic model through the API
//   keystore    sealing/opening 200,000 sample payloads vs SHA-256 of them; data key create/get/destroy, bytes per key
//   erasure     uploads sealed vs in plaintext, opening 200,000 samples at training start, forget request -> keys destroyed, key store size
//   learn       online learning of k new samples as appended slices vs placing them by hash and vs training from scratch
//   scale       SISA S=8 training and a forget with 1, 2 and 4 worker processes sharing only PostgreSQL, vs one worker training every shard
//   contention  a shard task's training alone and beside another process (the scale bench's): CPU and wall seconds
// Without a suite, all of them run with their defaults. Every table prints its baseline measured in the same run.
// A suite's flags are those of its bench files (bench/lib/args.ts); a bad one stops it before anything runs (exit 2).
import { BenchUsageError, formatFlags, parseBenchArgs, type Bench, type FlagSpecs } from './lib/args';

type AnyBench = Bench<FlagSpecs>;

const SUITES: Record<string, () => AnyBench[]> = {
  ledger: () => [require('./merkle.bench').bench, require('./ledger-db.bench').bench],
  anchor: () => [require('./anchor.bench').bench, require('./anchor-latency.bench').bench],
  unlearning: () => [require('./unlearning.bench').bench],
  membership: () => [require('./membership.bench').bench],
  methods: () => [require('./methods.bench').bench],
  verify: () => [require('./verify-log.bench').bench],
  api: () => [require('./api.bench').bench],
  'forget-latency': () => [require('./forget-latency.bench').bench],
  portal: () => [require('./portal-receipt.bench').bench],
  keystore: () => [require('./keystore.bench').bench],
  erasure: () => [require('./erasure.bench').bench],
  privacy: () => [require('./privacy.bench').bench],
  scale: () => [require('./scale.bench').bench],
  contention: () => [require('./shard-contention.bench').bench],
  learn: () => [require('./learn.bench').bench],
};

const usage = (): string => `usage: npm run bench [-- <suite> [flags]]; suites: ${Object.keys(SUITES).join(', ')}; <suite> --help lists its flags\n`;

async function main(argv: string[]): Promise<number> {
  const [name, ...flags] = argv;
  if (name === '--help' || name === '-h') {
    process.stdout.write(usage());
    return 0;
  }
  if (name !== undefined && name.startsWith('-')) {
    process.stderr.write(`bench: flags go after a suite name\n${usage()}`);
    return 2;
  }
  const names = name === undefined ? Object.keys(SUITES) : [name];
  for (const n of names) {
    if (!SUITES[n]) {
      process.stderr.write(`unknown benchmark "${n}"; choose one of: ${Object.keys(SUITES).join(', ')}\n`);
      return 2;
    }
  }
  // Every suite's flags are checked before the first one runs.
  const plans = names.map((n) => {
    const benches = SUITES[n]();
    const suiteFlags: FlagSpecs = Object.assign({}, ...benches.map((b) => b.flags));
    return { name: n, benches, suiteFlags, options: parseBenchArgs(suiteFlags, n === name ? flags : []) };
  });
  for (const plan of plans) {
    if (plan.options === 'help') {
      process.stdout.write(
        `npm run bench -- ${plan.name} [flags]\n${plan.benches.map((b) => `  ${b.summary}`).join('\n')}\n${formatFlags(plan.suiteFlags)}\n`,
      );
      continue;
    }
    process.stdout.write(`\n=== bench ${plan.name} (${new Date().toISOString()}, node ${process.version}) ===\n`);
    for (const bench of plan.benches) await bench.run(plan.options);
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof BenchUsageError) {
      process.stderr.write(`bench: ${error.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
