import { Command } from 'commander';
import { SingleBar, Presets } from 'cli-progress';
import { resolve } from 'node:path';
import { fsckLedger } from '@lethe/ledger';
import { connectToServiceDatabase } from '../database';

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
      const bar = process.stderr.isTTY && !opts.json ? new SingleBar({ format: 'fsck [{bar}] {percentage}% | {value}/{total} entries | ETA {eta}s' }, Presets.shades_classic) : undefined;
      try {
        let started = false;
        const report = await fsckLedger(db.dataSource, {
          onProgress: (checked, total) => {
            if (!bar) return;
            if (!started) bar.start(total, 0);
            started = true;
            bar.update(checked);
          },
        });
        bar?.stop();
        if (opts.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        else if (report.ok)
          process.stdout.write(
            `ok: ${report.entries} entries, ${report.nodes} interior nodes, ${report.checkpoints} checkpoints; root ${report.rootHash}\n`,
          );
        else process.stdout.write(`FAILED at index ${report.firstProblem!.index}: ${report.firstProblem!.kind}: ${report.firstProblem!.message}\n`);
        process.exitCode = report.ok ? 0 : 1;
      } finally {
        bar?.stop();
        await db.close();
      }
    });
}
