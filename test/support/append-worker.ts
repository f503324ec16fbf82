// A separate appender process for the concurrency and crash tests:
//   node -r ./scripts/register.js test/support/append-worker.ts DATABASE_URL WORKER_ID BATCHES BATCH_SIZE
// It prints one JSON line per acknowledged batch: {"worker":..,"batch":..,"indices":[..]}.
import { Ledger, openDatabase } from '@lethe/ledger';
import { buildEvents } from './factories';

async function main(): Promise<void> {
  const [url, workerId, batches, batchSize] = process.argv.slice(2);
  const dataSource = await openDatabase({ url, poolSize: 2 });
  const ledger = new Ledger(dataSource);
  const id = Number(workerId);
  for (let b = 0; b < Number(batches); b++) {
    const events = buildEvents(id * 1_000_000 + b * Number(batchSize), Number(batchSize));
    const entries = await ledger.append(events);
    process.stdout.write(`${JSON.stringify({ worker: id, batch: b, indices: entries.map((e) => e.index) })}\n`);
  }
  await dataSource.destroy();
}

main().catch((error) => {
  process.stderr.write(`${(error as Error).stack}\n`);
  process.exit(1);
});
