import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Command } from 'commander';
import { verifyModel, type VerifyModelReport } from '@lethe/verifier';
import { describeGuarantee, describePrivacyGuarantee, describeRuntimeEnvelope, guaranteeKind } from '@lethe/events';
import { ChainAuditOptions, addChainAuditOptions, runAudit, formatFailure } from './cli-support';

type VerifyModelCommandOptions = ChainAuditOptions;

/**
 * `verify-model <file.onnx>`: which published model version a file is, what it learned and which forget
 * requests it reflects, from the log checked against the chain. Exit 0 when found and verified, 1 when the
 * file is not a published model or anything fails, 2 on bad usage.
 */
export function buildVerifyModelCommand(): Command {
  return addChainAuditOptions(
    new Command('verify-model')
      .description('hash an ONNX file, find the MODEL_PUBLISHED entry with that SHA-256 in the log, and check it against the chain')
      .argument('<file>', 'the ONNX model file'),
  ).action(async (file: string, opts: VerifyModelCommandOptions) => {
    process.exitCode = await runVerifyModel(file, opts);
  });
}

async function runVerifyModel(file: string, opts: VerifyModelCommandOptions): Promise<number> {
  let onnxSha256: string;
  try {
    onnxSha256 = await sha256File(file);
  } catch (error) {
    process.stderr.write(
      `lethe-audit verify-model: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}\n`,
    );
    return 2;
  }
  const run = await runAudit('verify-model', opts, (onProgress) =>
    verifyModel({ apiUrl: opts.api, rpcUrl: opts.rpc, contract: opts.contract, onnxSha256, timeoutMs: opts.timeout, onProgress }),
  );
  if ('exitCode' in run) return run.exitCode;
  const { report } = run;
  if (opts.json) process.stdout.write(`${JSON.stringify({ file, onnxSha256, ...report }, null, 2)}\n`);
  else process.stdout.write(formatReport(file, onnxSha256, report));
  return report.ok ? 0 : 1;
}

function formatReport(file: string, onnxSha256: string, report: VerifyModelReport): string {
  const lines: string[] = [];
  const chain = report.contract ? `AuditAnchor ${report.contract} on chain ${report.chainId}` : 'no contract';
  if (!report.found && report.failures.length === 0) {
    lines.push(`not a published model: no MODEL_PUBLISHED entry among ${report.treeSize} has SHA-256 ${onnxSha256} (${file})`);
  } else {
    lines.push(
      `${report.ok ? 'ok' : 'FAILED'}: ${file} (SHA-256 ${onnxSha256}); ${report.treeSize ?? '?'} entries re-hashed, root at size ${
        report.anchoredTreeSize ?? '?'
      } matches ${chain}`,
    );
  }
  for (const m of report.models) {
    const anchor = m.anchor
      ? `proven in checkpoint ${m.anchor.anchor} on chain (size ${m.anchor.treeSize})`
      : 'not proven against the chain';
    lines.push(
      `  model ${m.modelId} version ${m.modelVersion}: MODEL_PUBLISHED at entry ${m.index}, ${anchor}; manifest ${m.manifestHash}`,
    );
    lines.push(`    trained under ${m.runtime ? describeRuntimeEnvelope(m.runtime) : 'a runtime envelope its entry does not record (published before envelopes were)'}`);
    lines.push(`    privacy: ${m.privacy ? describePrivacyGuarantee(m.privacy) : 'none recorded (trained without differential privacy)'}`);
    lines.push(`    trained on ${m.batches.length} batches (${m.batches.reduce((n, b) => n + b.count, 0)} samples):`);
    for (const b of m.batches)
      lines.push(
        `      shard ${b.shard} slice ${b.slice}: ${b.count} samples, batch root ${b.batchRoot} (entry ${b.index}, version ${b.modelVersion})`,
      );
    if (m.retired) {
      lines.push(
        `    RETIRED at entry ${m.retired.index} (VERSION_RETIRED) for forget request(s) ${m.retired.forgetRequestIds.join(', ')}: it learned their samples; the service deleted its file and serves it no more`,
      );
    }
    for (const d of m.checkpointsDeleted)
      lines.push(`    ${d.checkpoints.length} checkpoint(s) of its lineage deleted at entry ${d.index} (CHECKPOINTS_DELETED) for ${d.forgetRequestIds.join(', ')}`);
    const own = m.unlearned.find((u) => u.modelVersion === m.modelVersion);
    if (own) lines.push(`    made by unlearning (entry ${own.index}), guarantee ${guaranteeKind(own.guarantee)}: ${describeGuarantee(own.guarantee)}`);
    if (m.forgetRequests.length === 0) lines.push('    reflects no forget request');
    for (const r of m.forgetRequests) {
      lines.push(
        `    reflects forget request ${r.requestId} (FORGET_REQUESTED at entry ${r.index ?? '?'}, ${
          r.commitments
        } samples; UNLEARN_COMPLETED at entry ${r.unlearnIndex} -> version ${r.unlearnVersion}, ${guaranteeKind(r.guarantee)})`,
      );
    }
  }
  for (const failure of report.failures) lines.push(formatFailure(failure));
  return `${lines.join('\n')}\n`;
}

function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    createReadStream(file)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')));
  });
}
