import { Command, InvalidArgumentError } from 'commander';
import { COMMITMENT_PATTERN, verifyReceipt, type ReceiptAnchor, type VerifyReceiptReport } from '@lethe/verifier';
import { ChainAuditOptions, addChainAuditOptions, runAudit, formatFailure } from './cli-support';

type VerifyReceiptCommandOptions = ChainAuditOptions;

/**
 * `verify-receipt <commitment>`: where a sample was learned and where its forgetting was requested, each
 * entry proven against a root the chain holds. Exit 0 when the receipt verifies, 1 on any failure, 2 on bad usage.
 */
export function buildVerifyReceiptCommand(): Command {
  return addChainAuditOptions(
    new Command('verify-receipt')
      .description(
        "fetch a sample commitment's receipt and check every entry and proof in it against the AuditAnchor checkpoints on the chain",
      )
      .argument('<commitment>', 'the sample commitment (64 lowercase hex characters)', parseCommitment),
  ).action(async (commitment: string, opts: VerifyReceiptCommandOptions) => {
    process.exitCode = await runVerifyReceipt(commitment, opts);
  });
}

async function runVerifyReceipt(commitment: string, opts: VerifyReceiptCommandOptions): Promise<number> {
  // No progress to show: a receipt is a handful of requests.
  const run = await runAudit('verify-receipt', { json: true }, () =>
    verifyReceipt({ apiUrl: opts.api, rpcUrl: opts.rpc, contract: opts.contract, commitment, timeoutMs: opts.timeout }),
  );
  if ('exitCode' in run) return run.exitCode;
  const { report } = run;
  process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  return report.ok ? 0 : 1;
}

function formatAnchor(anchored: ReceiptAnchor | null): string {
  if (!anchored) return 'not proven against the chain';
  const tx = anchored.txHash ? `, tx ${anchored.txHash} in block ${anchored.blockNumber}` : '';
  return `proven in checkpoint ${anchored.anchor} on chain (size ${anchored.treeSize}, root ${anchored.rootHash}${tx})`;
}

function formatReport(report: VerifyReceiptReport): string {
  const lines: string[] = [];
  const chain = report.contract ? `AuditAnchor ${report.contract} on chain ${report.chainId}` : 'no contract';
  lines.push(`${report.ok ? 'ok' : 'FAILED'}: receipt of commitment ${report.commitment} (dataset ${report.datasetId ?? '?'}; ${chain})`);
  const learned = report.learned;
  if (learned) {
    lines.push(
      `  learned:   entry ${learned.index} (${learned.type ?? '?'}), position ${learned.position} of ${
        learned.count
      } in its batch; ${formatAnchor(learned.anchored)}`,
    );
    if (learned.firstAnchored && learned.firstAnchored.anchor !== learned.anchored?.anchor) {
      lines.push(
        `             first anchored in checkpoint ${learned.firstAnchored.anchor} (size ${learned.firstAnchored.treeSize}), tx ${learned.firstAnchored.txHash} in block ${learned.firstAnchored.blockNumber}`,
      );
    }
  }
  for (const request of report.forgetRequests) {
    lines.push(
      `  forgotten: entry ${request.index} (${request.type ?? '?'} ${request.requestId}, ${request.state}); ${formatAnchor(
        request.anchored,
      )}`,
    );
  }
  if (report.forgetRequests.length === 0 && learned) lines.push('  forgotten: no forget request names this commitment');
  const { retirement } = report;
  for (const b of retirement.learnedIn) {
    lines.push(
      `  learned by: model ${b.modelId ?? '?'} version ${b.modelVersion ?? '?'}, shard ${b.shard ?? '?'} slice ${b.slice ?? '?'} (entry ${b.index}, ${b.type ?? '?'}), position ${b.position} in its batch; ${formatAnchor(b.anchored)}`,
    );
  }
  for (const model of retirement.models) {
    for (const v of model.versions) {
      lines.push(
        `  model ${model.modelId} version ${v.modelVersion}: ${v.retiredBy === null ? 'NOT retired' : `retired at entry ${v.retiredBy} (VERSION_RETIRED)`}`,
      );
    }
    if (model.unlearnedVersion !== null) lines.push(`  model ${model.modelId} version ${model.unlearnedVersion}: unlearned it`);
  }
  for (const d of retirement.checkpointsDeleted)
    lines.push(`  checkpoints: ${d.checkpoints} of model ${d.modelId ?? '?'} deleted at entry ${d.index} (${d.type ?? '?'}); ${formatAnchor(d.anchored)}`);
  if (report.forgottenClaimed !== null) {
    lines.push(
      `  the service says the sample's data and salt ${
        report.forgottenClaimed ? 'are destroyed' : 'are kept'
      } (not checkable from the log)`,
    );
  }
  for (const failure of report.failures) lines.push(formatFailure(failure));
  return `${lines.join('\n')}\n`;
}

function parseCommitment(value: string): string {
  if (!COMMITMENT_PATTERN.test(value)) throw new InvalidArgumentError('must be 32 bytes of lowercase hex (64 characters)');
  return value;
}
