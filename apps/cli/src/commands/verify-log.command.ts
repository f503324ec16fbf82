import { Command, InvalidArgumentError } from 'commander';
import { Presets, SingleBar } from 'cli-progress';
import { VerifierError, verifyLog, type VerifyLogReport } from '@lethe/verifier';

interface VerifyLogCommandOptions {
  api: string;
  rpc: string;
  contract?: string;
  json?: boolean;
  timeout: number;
}

/**
 * `verify-log`: an auditor's full check of the service's log against the chain. Exit 0 when everything
 * verifies, 1 on any failure (the service or chain unreachable included), 2 on bad usage.
 */
export function buildVerifyLogCommand(): Command {
  return new Command('verify-log')
    .description('download every entry from the service, re-hash it, and check every root against the AuditAnchor checkpoints on the chain')
    .requiredOption('--api <url>', "the service's base URL, e.g. http://localhost:3000")
    .requiredOption('--rpc <url>', 'a JSON-RPC endpoint of the chain the log is anchored on')
    .option('--contract <address>', "AuditAnchor's address (default: from the log's latest ANCHORED entry)")
    .option('--json', 'print the report as JSON')
    .option('--timeout <ms>', 'per HTTP request and JSON-RPC call', parsePositiveInteger, 30_000)
    // Usage errors exit 2 (commander's own default is 1, which here means "the log failed verification").
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2))
    .action(async (opts: VerifyLogCommandOptions) => {
      process.exitCode = await runVerifyLog(opts);
    });
}

async function runVerifyLog(opts: VerifyLogCommandOptions): Promise<number> {
  const bar =
    process.stderr.isTTY && !opts.json
      ? new SingleBar({ format: 'verify-log [{bar}] {percentage}% | {value}/{total} entries | ETA {eta}s', stream: process.stderr }, Presets.shades_classic)
      : undefined;
  let started = false;
  let report: VerifyLogReport;
  try {
    report = await verifyLog({
      apiUrl: opts.api,
      rpcUrl: opts.rpc,
      contract: opts.contract,
      timeoutMs: opts.timeout,
      onProgress: (verified, total) => {
        if (!bar) return;
        if (!started) bar.start(total, 0);
        started = true;
        bar.update(verified);
      },
    });
  } catch (error) {
    bar?.stop();
    const usage = error instanceof VerifierError && error.code === 'INVALID_ARGUMENT';
    process.stderr.write(`lethe-audit verify-log: ${error instanceof Error ? error.message : String(error)}\n`);
    return usage ? 2 : 1;
  }
  bar?.stop();
  process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  return report.ok ? 0 : 1;
}

function formatReport(report: VerifyLogReport): string {
  const lines: string[] = [];
  const { anchors } = report;
  const chain = report.contract ? `AuditAnchor ${report.contract} on chain ${report.chainId ?? '?'}` : 'no contract';
  if (report.ok) {
    lines.push(`ok: ${report.entries} entries re-hashed; root ${report.rootHash} at size ${report.treeSize} matches the service's checkpoint`);
    lines.push(
      `    ${chain} (block ${report.blockNumber}): ${anchors.checked} of ${anchors.onChain} checkpoints match the recomputed roots; ` +
        `the latest (size ${anchors.latest?.treeSize}) is consistent with the service's checkpoint`,
    );
    lines.push(
      `    ${anchors.loggedChecked} ANCHORED entries match their transactions` +
        (anchors.loggedElsewhere > 0 ? `; ${anchors.loggedElsewhere} name another chain or contract and were not checked` : ''),
    );
  } else {
    const count = report.failures.length + report.failuresOmitted;
    lines.push(`FAILED: ${count} problem${count === 1 ? '' : 's'} (${report.entries} of ${report.treeSize ?? '?'} entries read; ${chain})`);
    for (const failure of report.failures) {
      const where = [failure.index !== undefined ? `entry ${failure.index}` : '', failure.anchor !== undefined ? `anchor ${failure.anchor}` : '']
        .filter(Boolean)
        .join(', ');
      lines.push(`  ${failure.code}${where ? ` (${where})` : ''}: ${failure.message}`);
    }
    if (report.failuresOmitted > 0) lines.push(`  ... and ${report.failuresOmitted} more`);
  }
  return `${lines.join('\n')}\n`;
}

function parsePositiveInteger(value: string): number {
  const n = Number(value);
  if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive integer');
  return n;
}
