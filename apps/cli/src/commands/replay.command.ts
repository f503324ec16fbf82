import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { Command, Option } from 'commander';
import { Presets, SingleBar } from 'cli-progress';
import { describeRuntimeEnvelope, type ExampleFormat } from '@lethe/unlearning';
import { VerifierError } from '@lethe/verifier';
import { describeLearnBatchMismatch, replayModel, type ReplayReport } from '@lethe/verifier/replay';
import { parsePositiveInteger } from './cli-support';

interface ReplayCommandOptions {
  model: string;
  version: number;
  data: string;
  api: string;
  rpc?: string;
  contract?: string;
  apiKey?: string;
  format?: ExampleFormat;
  json?: boolean;
  timeout: number;
}

/** A usage failure of the command itself (the --data file): exit 2. */
class UsageFailure extends Error {}

/**
 * `replay`: the replay audit of libs/verifier (replayModel) on the auditor's copy of the surviving data. Exit 0
 * when the ONNX SHA-256 equals the published one, 1 when not (or when anything cannot be checked), 2 on bad
 * usage (options, a --data file that cannot be read or parsed).
 */
export function buildReplayCommand(): Command {
  return new Command('replay')
    .description("retrain a model version from its configuration and your copy of its data, and compare the ONNX SHA-256 with the ledger's")
    .requiredOption('--model <id>', 'the model id')
    .requiredOption('--version <n>', 'the published version', parsePositiveInteger)
    .requiredOption(
      '--data <file>',
      'the surviving samples (held-out ones may be included): JSON array, NDJSON or CSV of {externalId, features, label}',
    )
    .requiredOption('--api <url>', "the service's base URL, e.g. http://localhost:3000")
    .option('--rpc <url>', 'a JSON-RPC endpoint: also check the MODEL_PUBLISHED entry and the batches against the chain')
    .option('--contract <address>', "AuditAnchor's address (default: from the log's latest ANCHORED entry)")
    .addOption(new Option('--api-key <key>', 'an auditor API key (reads the model configuration)').env('LETHE_API_KEY'))
    .addOption(new Option('--format <format>', 'format of --data (default: from the file extension)').choices(['json', 'ndjson', 'csv']))
    .option('--json', 'print the result as JSON')
    .option('--timeout <ms>', 'per HTTP request and JSON-RPC call', parsePositiveInteger, 30_000)
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2))
    .action(async (opts: ReplayCommandOptions) => {
      try {
        const report = await runReplay(opts);
        process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
        process.exitCode = report.ok ? 0 : 1;
      } catch (error) {
        const usage = error instanceof UsageFailure || (error instanceof VerifierError && error.code === 'INVALID_ARGUMENT');
        process.stderr.write(`lethe-audit replay: ${error instanceof Error ? error.message : String(error)}\n`);
        process.exitCode = usage ? 2 : 1;
      }
    });
}

async function runReplay(opts: ReplayCommandOptions): Promise<ReplayReport> {
  const format = opts.format ?? formatOf(opts.data);
  let text: string;
  try {
    text = await readFile(opts.data, 'utf8');
  } catch (error) {
    throw new UsageFailure(`cannot read ${opts.data}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  const bar =
    process.stderr.isTTY && !opts.json
      ? new SingleBar({ format: 'replay [{bar}] {percentage}% | ETA {eta}s', stream: process.stderr }, Presets.shades_classic)
      : undefined;
  bar?.start(100, 0);
  try {
    return await replayModel({
      apiUrl: opts.api,
      modelId: opts.model,
      modelVersion: opts.version,
      data: { text, format, name: opts.data },
      rpcUrl: opts.rpc,
      contract: opts.contract,
      apiKey: opts.apiKey,
      timeoutMs: opts.timeout,
      onProgress: (fraction) => bar?.update(Math.round(fraction * 100)),
    });
  } finally {
    bar?.stop();
  }
}

function formatReport(r: ReplayReport): string {
  const where = `MODEL_PUBLISHED at entry ${r.publishedIndex}${
    r.anchor !== null ? `, proven in checkpoint ${r.anchor} on chain` : ', not checked against the chain (no --rpc)'
  }`;
  const counts =
    r.ledgerSamples !== null && r.ledgerSamples !== r.samples
      ? ` (the ledger's batches hold ${r.ledgerSamples} samples, the data ${r.samples})`
      : '';
  const from = `${r.samples} samples${r.heldOut > 0 ? ` (${r.heldOut} more held out by the model's holdout rule)` : ''}`;
  const wrongBatches = r.learnBatches.filter((b) => !b.ok);
  if (wrongBatches.length > 0)
    return `${[
      `MISMATCH: model ${r.modelId} version ${r.modelVersion}: the data's learn batches are not the log's, nothing was trained (${where})`,
      ...wrongBatches.map((b) => `  ${describeLearnBatchMismatch(b)}`),
    ].join('\n')}\n`;
  const verdict = r.ok
    ? `ok: model ${r.modelId} version ${r.modelVersion} replayed from ${from}: ONNX SHA-256 ${r.replayedSha256} equals the published one (${where})`
    : `MISMATCH: model ${r.modelId} version ${r.modelVersion} replayed from ${from} gives ONNX SHA-256 ${r.replayedSha256}, the ledger published ${r.publishedSha256} (${where})${counts}`;
  return `${[verdict, ...formatEnvelopes(r)].join('\n')}\n`;
}

/** Both runtime envelopes, and whether the same bytes were to be expected from them. */
function formatEnvelopes(r: ReplayReport): string[] {
  const lines = [
    `  published under: ${r.publishedRuntime ? describeRuntimeEnvelope(r.publishedRuntime) : 'not recorded (the entry is from before runtime envelopes were)'}`,
    `  replayed under:  ${describeRuntimeEnvelope(r.replayRuntime)}`,
  ];
  if (r.runtimeDifferences === null)
    lines.push('  byte equality: expected only if this machine matches the unrecorded one (same onnxruntime, Node, platform and CPU kernel family)');
  else if (r.runtimeDifferences.length === 0) lines.push('  byte equality: expected (the same runtime envelope)');
  else
    lines.push(
      `  byte equality: not expected, the envelopes differ in ${r.runtimeDifferences.join(', ')}${
        r.ok ? '' : ': a different SHA-256 alone does not show a different training; replay under the published envelope'
      }`,
    );
  return lines;
}

function formatOf(file: string): ExampleFormat {
  const ext = extname(file).toLowerCase();
  if (ext === '.json') return 'json';
  if (ext === '.ndjson' || ext === '.jsonl') return 'ndjson';
  if (ext === '.csv') return 'csv';
  throw new UsageFailure(`cannot tell the format of ${file} from its extension: give --format json, ndjson or csv`);
}
