import { Command } from 'commander';
import { verifyLog, type VerifyLogReport } from '@lethe/verifier';
import { ChainAuditOptions, addChainAuditOptions, runAudit, formatFailure } from './cli-support';

type VerifyLogCommandOptions = ChainAuditOptions;

/**
 * `verify-log`: an auditor's full check of the service's log against the chain. Exit 0 when everything
 * verifies, 1 on any failure (the service or chain unreachable included), 2 on bad usage.
 */
export function buildVerifyLogCommand(): Command {
  return addChainAuditOptions(
    new Command('verify-log').description(
      'download every entry from the service, re-hash it, and check every root against the AuditAnchor checkpoints on the chain',
    ),
  ).action(async (opts: VerifyLogCommandOptions) => {
    process.exitCode = await runVerifyLog(opts);
  });
}

async function runVerifyLog(opts: VerifyLogCommandOptions): Promise<number> {
  const run = await runAudit('verify-log', opts, (onProgress) =>
    verifyLog({ apiUrl: opts.api, rpcUrl: opts.rpc, contract: opts.contract, timeoutMs: opts.timeout, onProgress }),
  );
  if ('exitCode' in run) return run.exitCode;
  const { report } = run;
  process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  return report.ok ? 0 : 1;
}

function formatReport(report: VerifyLogReport): string {
  const lines: string[] = [];
  const { anchors } = report;
  const chain = report.contract ? `AuditAnchor ${report.contract} on chain ${report.chainId ?? '?'}` : 'no contract';
  if (report.ok) {
    lines.push(
      `ok: ${report.entries} entries re-hashed; root ${report.rootHash} at size ${report.treeSize} matches the service's checkpoint`,
    );
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
    for (const failure of report.failures) lines.push(formatFailure(failure));
    if (report.failuresOmitted > 0) lines.push(`  ... and ${report.failuresOmitted} more`);
  }
  lines.push(...formatRecoveries(report));
  return `${lines.join('\n')}\n`;
}

/**
 * Each predecessor the contract succeeds, whether or not the rest verified: `WARNING RECOVERY: ...`, then
 * its checkpoints up to the vouched one (checked) and every one beyond it (disregarded), one per line.
 */
function formatRecoveries(report: VerifyLogReport): string[] {
  const lines: string[] = [];
  for (const warning of report.warnings) lines.push(`WARNING ${warning.code}: ${warning.message}`);
  for (const p of report.predecessors) {
    lines.push(`    ${p.contract}: ${p.checked} checkpoint(s) up to the vouched size ${p.vouchedSize} match the recomputed roots`);
    for (const c of p.disregarded) lines.push(`    disregarded: checkpoint ${c.number} on ${p.contract}, size ${c.treeSize}, root ${c.rootHash}`);
  }
  return lines;
}
