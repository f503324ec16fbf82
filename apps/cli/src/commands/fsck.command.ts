import { Command } from 'commander';
import { resolve } from 'node:path';
import { fsckLedger } from '@lethe/ledger';
import { connectToServiceDatabase } from '../database';
import { createProgress } from './cli-support';

/** `fsck`: recompute every leaf, node, checkpoint and the head from the stored entries. */
export function buildFsckCommand(): Command {
  return new Command('fsck')
    .description('recompute every stored node and root of the ledger from its entries; report the first mismatch')
    .option('--database-url <url>', 'PostgreSQL URL (default: $DATABASE_URL, else the embedded database in --data-dir)')
    .option('--data-dir <dir>', 'the service data directory (default: $DATA_DIR or ./data)')
    .option('--json', 'print the report as JSON')
    .action(async (opts: { databaseUrl?: string; dataDir?: string; json?: boolean }) => {
      const db = await connectToServiceDatabase({
        databaseUrl: opts.databaseUrl ?? process.env.DATABASE_URL,
        dataDir: resolve(opts.dataDir ?? process.env.DATA_DIR ?? './data'),
      });
      const bar = createProgress('fsck', !opts.json);
      try {
        const report = await fsckLedger(db.dataSource, { onProgress: (checked, total) => bar.update(checked, total) });
        bar.stop();
        if (opts.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        else if (report.ok)
          process.stdout.write(
            `ok: ${report.entries} entries, ${report.nodes} interior nodes, ${report.checkpoints} checkpoints; root ${report.rootHash}\n`,
          );
        else
          process.stdout.write(
            `FAILED at index ${report.firstProblem!.index}: ${report.firstProblem!.kind}: ${report.firstProblem!.message}\n`,
          );
        process.exitCode = report.ok ? 0 : 1;
      } finally {
        bar.stop();
        await db.close();
      }
    });
}
