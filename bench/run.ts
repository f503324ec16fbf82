// npm run bench [-- <suite> [suite options]]
//   ledger      libs/merkle in memory (vs merkletreejs and raw hashing) + durable appends and proofs on PostgreSQL
//   anchor      gas per anchor and per event on a local Hardhat chain, vs one transaction per event
//   unlearning  SISA unlearning vs full retraining, accuracy, GFLOP/s vs the GEMM ceiling, membership inference
//   verify      lethe-audit verify-log on a large log vs just downloading and hashing it
//   portal      a receipt verified in the portal in Chromium vs the same verifyReceipt in Node
//   api         the HTTP API with 100 concurrent clients vs 1, and forget request -> anchored UNLEARN_COMPLETED
//   keystore    sealing/opening 200,000 sample payloads vs SHA-256 of them; data key create/get/destroy, bytes per key
// Without a suite, all of them run. Every table prints its baseline measured in the same run.
type Suite = { run(argv: string[]): Promise<void> };

const SUITES: Record<string, () => Suite[]> = {
  ledger: () => [require('./merkle.bench') as Suite, require('./ledger-db.bench') as Suite],
  anchor: () => [require('./anchor.bench') as Suite, require('./anchor-latency.bench') as Suite],
  unlearning: () => [require('./unlearning.bench') as Suite],
  verify: () => [require('./verify-log.bench') as Suite],
  api: () => [require('./api.bench') as Suite],
  portal: () => [require('./portal-receipt.bench') as Suite],
  keystore: () => [require('./keystore.bench') as Suite],
};

async function main(): Promise<void> {
  const [name, ...rest] = process.argv.slice(2);
  const names = name === undefined || name.startsWith('--') ? Object.keys(SUITES) : [name];
  for (const n of names) {
    const load = SUITES[n];
    if (!load) {
      process.stderr.write(`unknown benchmark "${n}"; choose one of: ${Object.keys(SUITES).join(', ')}\n`);
      process.exit(2);
    }
    process.stdout.write(`\n=== bench ${n} (${new Date().toISOString()}, node ${process.version}) ===\n`);
    for (const suite of load()) await suite.run(name === undefined || name.startsWith('--') ? process.argv.slice(2) : rest);
  }
}

main().catch((error) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
