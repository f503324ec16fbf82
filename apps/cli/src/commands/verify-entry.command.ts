import { Command, InvalidArgumentError } from 'commander';
import { VerifierError, verifyInclusionAgainstChain, type InclusionVerification } from '@lethe/verifier';
import { ChainAuditOptions, addChainAuditOptions } from './cli-support';

interface VerifyEntryCommandOptions extends ChainAuditOptions {
  leafHash?: string;
  treeSize?: number;
}

/**
 * `verify-entry <index> [--leaf-hash H]`: one log entry proven against a root the chain holds. With the
 * `ledgerIndex` and `leafHash` a forget request's 202 returned, the requester checks that her request is
 * still in the log, unchanged. Exit 0 when it verifies, 1 when it does not, 2 on bad usage.
 */
export function buildVerifyEntryCommand(): Command {
  return addChainAuditOptions(
    new Command('verify-entry')
      .description(
        'prove one log entry against an AuditAnchor checkpoint on the chain; with --leaf-hash, also that it is the entry the service acknowledged (a forget request receipt)',
      )
      .argument('<index>', 'the entry index (a forget request receipt calls it ledgerIndex)', parseIndex)
      .option('--leaf-hash <hex>', 'the leaf hash the service acknowledged for this entry (64 lowercase hex characters)', parseLeafHash)
      .option('--tree-size <n>', 'prove it in this anchored tree size (default: the latest checkpoint on chain)', parseIndex),
  ).action(async (index: number, opts: VerifyEntryCommandOptions) => {
    process.exitCode = await runVerifyEntry(index, opts);
  });
}

async function runVerifyEntry(index: number, opts: VerifyEntryCommandOptions): Promise<number> {
  let verified: InclusionVerification;
  try {
    verified = await verifyInclusionAgainstChain({
      apiUrl: opts.api,
      rpcUrl: opts.rpc,
      contract: opts.contract,
      index,
      treeSize: opts.treeSize,
      leafHash: opts.leafHash,
      timeoutMs: opts.timeout,
    });
  } catch (error) {
    if (error instanceof VerifierError && error.code !== 'INVALID_ARGUMENT') {
      const failure = { code: error.code, message: error.message, index: error.index, anchor: error.anchor };
      process.stdout.write(
        opts.json
          ? `${JSON.stringify({ ok: false, index, failures: [failure] }, null, 2)}\n`
          : `FAILED: entry ${index}\n  ${error.code}: ${error.message}\n`,
      );
      return 1;
    }
    process.stderr.write(`lethe-audit verify-entry: ${error instanceof Error ? error.message : String(error)}\n`);
    return 2;
  }
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ ok: true, ...verified, failures: [] }, null, 2)}\n`);
  } else {
    const acknowledged = opts.leafHash ? '; it is the entry the service acknowledged' : '';
    process.stdout.write(
      `ok: entry ${index} (${verified.event.type}) is in checkpoint ${verified.anchor} of AuditAnchor ${verified.contract} on chain ${verified.chainId} ` +
        `(size ${verified.treeSize}, root ${verified.rootHash})${acknowledged}\n  leaf hash ${verified.leafHash}\n  event ${verified.eventJson}\n`,
    );
  }
  return 0;
}

function parseIndex(value: string): number {
  const n = Number(value);
  if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(n)) throw new InvalidArgumentError('must be an integer >= 0');
  return n;
}

function parseLeafHash(value: string): string {
  if (!/^[0-9a-f]{64}$/.test(value)) throw new InvalidArgumentError('must be 32 bytes of lowercase hex (64 characters)');
  return value;
}
