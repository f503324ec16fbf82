import { Command, InvalidArgumentError } from 'commander';
import { Presets, SingleBar } from 'cli-progress';
import { redactText } from '@lethe/redact';
import { VerifierError, type VerificationFailure } from '@lethe/verifier';

/** commander parser for a positive decimal integer option. */
export function parsePositiveInteger(value: string): number {
  const n = Number(value);
  if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError('must be a positive integer');
  return n;
}

/** Options every chain-checking command takes: where the service and the chain are, output, timeout. */
export interface ChainAuditOptions {
  api: string;
  rpc: string;
  contract?: string;
  json?: boolean;
  timeout: number;
}

/**
 * Adds --api, --rpc, --contract, --json and --timeout, and makes usage errors exit 2 (commander's own
 * default is 1, which for these commands means "verification failed").
 */
export function addChainAuditOptions(command: Command): Command {
  return command
    .requiredOption('--api <url>', "the service's base URL, e.g. http://localhost:3000")
    .requiredOption('--rpc <url>', 'a JSON-RPC endpoint of the chain the log is anchored on')
    .option('--contract <address>', "AuditAnchor's address (default: from the log's latest ANCHORED entry)")
    .option('--json', 'print the report as JSON')
    .option('--timeout <ms>', 'per HTTP request and JSON-RPC call', parsePositiveInteger, 30_000)
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
}

/** A progress bar on stderr, shown only in a terminal and not with --json; started on the first update. */
export interface Progress {
  update(done: number, total: number): void;
  stop(): void;
}

export function createProgress(label: string, enabled: boolean): Progress {
  const bar =
    enabled && process.stderr.isTTY
      ? new SingleBar(
          { format: `${label} [{bar}] {percentage}% | {value}/{total} entries | ETA {eta}s`, stream: process.stderr },
          Presets.shades_classic,
        )
      : undefined;
  let started = false;
  return {
    update(done, total) {
      if (!bar) return;
      if (!started) bar.start(total, 0);
      started = true;
      bar.update(done);
    },
    stop() {
      bar?.stop();
    },
  };
}

/**
 * Runs one audit with a progress bar (`label`, shown only in a terminal and not with --json) and returns its
 * report, or the exit code when it threw: 2 for a usage error (VerifierError INVALID_ARGUMENT), else 1, with
 * one line on stderr (`lethe-audit <command>: <message>`, redacted: no RPC URL's key), never a stack trace.
 * Findings are in the report.
 */
export async function runAudit<R>(
  command: string,
  opts: { json?: boolean },
  audit: (onProgress: (done: number, total: number) => void) => Promise<R>,
): Promise<{ report: R } | { exitCode: number }> {
  const bar = createProgress(command, !opts.json);
  try {
    return { report: await audit((done, total) => bar.update(done, total)) };
  } catch (error) {
    const usage = error instanceof VerifierError && error.code === 'INVALID_ARGUMENT';
    process.stderr.write(`lethe-audit ${command}: ${redactText(error instanceof Error ? error.message : String(error))}\n`);
    return { exitCode: usage ? 2 : 1 };
  } finally {
    bar.stop();
  }
}

/** One failure as a report line: `  CODE (entry i, anchor a): message` (redacted, as everything printed of the chain). */
export function formatFailure(failure: VerificationFailure): string {
  const where = [
    failure.index !== undefined ? `entry ${failure.index}` : '',
    failure.anchor !== undefined ? `anchor ${failure.anchor}` : '',
  ]
    .filter(Boolean)
    .join(', ');
  return `  ${failure.code}${where ? ` (${where})` : ''}: ${redactText(failure.message)}`;
}
