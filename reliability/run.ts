// npm run reliability [-- <part>[,<part>...] [flags]]     (npm run reliability -- <part> --help lists its flags)
//   crash   SIGKILL at a random moment under uploads, training, forgets and anchoring; restart; the checks
//   chain   the anchoring loop through RPC outages, a reorg, a stuck nonce, fee spikes, a restarted chain
//   fuzz    random and near-valid bodies, queries and headers on every route: no 5xx, rejected requests change nothing
//   load    many clients over the API mix for minutes: throughput, latency, memory, no 5xx, nothing lost
// Without a part, all four run at full size (hours: the crash trials take most of it). The figures go into
// README's Reliability section. Each part counts what it did (trials, kills delivered, cases answered, faults
// injected) and fails below what its flags asked, so a small run cannot pass vacuously; .ci/run runs every part
// at a small size.
import { execSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { cpus } from 'node:os';
import { BenchUsageError, formatFlags, parseBenchArgs, type BenchOptions, type FlagSpecs } from '../bench/lib/args';
import { precompileSources } from '../test/support/precompile';
import { checkCounts, progress, type Part, type PartReport } from './lib/part';
import { startFromPrecompiled } from './lib/service';

type AnyPart = Part<FlagSpecs>;

const PARTS: Record<string, () => AnyPart> = {
  crash: () => require('./crash').part,
  chain: () => require('./chain-faults').part,
  fuzz: () => require('./fuzz').part,
  load: () => require('./load').part,
};

const usage = (): string =>
  `usage: npm run reliability [-- <part>[,<part>...] [flags]]; parts: ${Object.keys(PARTS).join(', ')}; <part> --help lists its flags\n`;

const loadAverage = (): string => execSync('uptime').toString().trim().replace(/^.*load average:\s*/, '');

async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === '--help' || first === '-h') {
    process.stdout.write(usage());
    return 0;
  }
  const named = first !== undefined && !first.startsWith('-');
  const names = named ? first.split(',') : Object.keys(PARTS);
  const flags = named ? rest : argv;
  for (const n of names) {
    if (!PARTS[n]) {
      process.stderr.write(`unknown part "${n}"; choose among: ${Object.keys(PARTS).join(', ')}\n`);
      return 2;
    }
  }
  // The flags of every part named are parsed as one set, before anything runs.
  const parts = names.map((n) => PARTS[n]());
  const allFlags: FlagSpecs = Object.assign({}, ...parts.map((p) => p.flags));
  const options = parseBenchArgs(allFlags, flags);
  if (options === 'help') {
    process.stdout.write(`npm run reliability -- ${names.join(',')} [flags]\n${parts.map((p) => `  ${p.summary}`).join('\n')}\n${formatFlags(allFlags)}\n`);
    return 0;
  }
  const started = new Date();
  process.stdout.write(
    `=== reliability ${names.join(', ')} (${started.toISOString()}, node ${process.version}, ${cpus().length} cores, load average ${loadAverage()}) ===\n`,
  );
  // The service is started many times (after every kill): its sources are transpiled once, here, as `npm start`'s
  // ts-node would transpile them at each start, and every start runs that output.
  const compiled = precompileSources('lethe-reliability-build-');
  startFromPrecompiled(compiled.dir);
  progress(`the service's ${compiled.files} source files transpiled once for every start (ts-node, transpile only) in ${compiled.seconds.toFixed(1)} s (${compiled.cpuSeconds.toFixed(1)} s of CPU)`);
  try {
    return await runParts(parts, options);
  } finally {
    rmSync(compiled.dir, { recursive: true, force: true });
  }
}

async function runParts(parts: AnyPart[], options: BenchOptions<FlagSpecs>): Promise<number> {
  const reports: PartReport[] = [];
  for (const part of parts) {
    const t0 = performance.now();
    const report = await part.run(options);
    // A run that did less than asked (trials not run, kills not delivered, cases unanswered) does not pass.
    report.failures.push(...checkCounts(report, part.least(options)));
    reports.push(report);
    process.stdout.write(
      `\n--- ${report.part} (${((performance.now() - t0) / 60_000).toFixed(1)} min, load average now ${loadAverage()}) ---\n${report.summary.map((l) => `  ${l}`).join('\n')}\n` +
        `  counted: ${Object.entries(report.counts).map(([k, v]) => `${k} ${v}`).join(', ')}\n`,
    );
    if (report.failures.length > 0) process.stdout.write(`  FAILURES (${report.failures.length}):\n${report.failures.map((f) => `    ${f}`).join('\n')}\n`);
  }
  const failed = reports.filter((r) => r.failures.length > 0);
  process.stdout.write(`\n=== ${failed.length === 0 ? 'every part passed' : `FAILED: ${failed.map((r) => r.part).join(', ')}`} ===\n`);
  return failed.length === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof BenchUsageError) {
      process.stderr.write(`reliability: ${error.message}\n`);
      process.exit(2);
    }
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
