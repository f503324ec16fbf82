import { Command, InvalidArgumentError } from 'commander';
import { Presets, SingleBar } from 'cli-progress';

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
