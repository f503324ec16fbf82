// How every bench reads its flags: node:util's parseArgs (strict: an unknown flag is an error), then each
// value checked against its declared type, so `--trials x` stops the bench with a message naming the flag
// (exit 2) instead of running with NaN. A flag's name is its option's key in kebab-case (purchaseSamples:
// --purchase-samples). `--help` prints the flags of the bench.
import { parseArgs } from 'node:util';

/** One flag: its type, what it does, and its default (none: the bench decides, e.g. from --quick). */
export type FlagSpec =
  | { type: 'boolean'; help: string }
  | { type: 'integer'; help: string; min?: number; default?: number }
  | { type: 'integers'; help: string; min?: number; default?: readonly number[] }
  | { type: 'choice'; help: string; choices: readonly string[]; default?: string };

export type FlagSpecs = Record<string, FlagSpec>;

type ValueOf<F extends FlagSpec> = F extends { type: 'boolean' }
  ? boolean
  : F extends { type: 'integer'; default: number }
    ? number
    : F extends { type: 'integer' }
      ? number | undefined
      : F extends { type: 'integers'; default: readonly number[] }
        ? number[]
        : F extends { type: 'integers' }
          ? number[] | undefined
          : F extends { type: 'choice'; choices: readonly (infer C)[]; default: string }
            ? C
            : F extends { type: 'choice'; choices: readonly (infer C)[] }
              ? C | undefined
              : never;

/** The parsed flags of a bench, typed from its specs. */
export type BenchOptions<S extends FlagSpecs> = { -readonly [K in keyof S]: ValueOf<S[K]> };

/** A bench's flags, declared once: their literal types give BenchOptions its types. */
export function defineFlags<const S extends FlagSpecs>(flags: S): S {
  return flags;
}

/** The command line was wrong: the message names the flag. Benches exit 2 on it. */
export class BenchUsageError extends Error {
  override readonly name = 'BenchUsageError';
}

const flagName = (key: string): string => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/** The options `argv` gives, or 'help' when it asks for --help. Throws BenchUsageError naming the flag. */
export function parseBenchArgs<S extends FlagSpecs>(flags: S, argv: readonly string[]): BenchOptions<S> | 'help' {
  const options: Record<string, { type: 'boolean' | 'string' }> = { help: { type: 'boolean' } };
  for (const [key, spec] of Object.entries(flags)) options[flagName(key).slice(2)] = { type: spec.type === 'boolean' ? 'boolean' : 'string' };
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new BenchUsageError((error as Error).message);
  }
  if (values.help) return 'help';
  const parsed: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(flags)) {
    const raw = values[flagName(key).slice(2)];
    parsed[key] = raw === undefined ? defaultOf(spec) : parseValue(flagName(key), spec, raw);
  }
  return parsed as BenchOptions<S>;
}

function defaultOf(spec: FlagSpec): unknown {
  if (spec.type === 'boolean') return false;
  if (spec.type === 'integers') return spec.default ? [...spec.default] : undefined;
  return spec.default;
}

function parseValue(flag: string, spec: FlagSpec, raw: string | boolean): unknown {
  if (spec.type === 'boolean') return raw;
  const text = String(raw);
  if (spec.type === 'choice') {
    if (!spec.choices.includes(text)) throw new BenchUsageError(`${flag} must be one of ${spec.choices.join(', ')}, got "${text}"`);
    return text;
  }
  const integer = (part: string): number => {
    const n = Number(part);
    const min = spec.min ?? Number.MIN_SAFE_INTEGER;
    if (!/^-?[0-9]+$/.test(part) || !Number.isSafeInteger(n) || n < min) {
      const what = spec.type === 'integers' ? 'a comma-separated list of integers' : 'an integer';
      throw new BenchUsageError(`${flag} must be ${what}${spec.min !== undefined ? ` >= ${spec.min}` : ''}, got "${text}"`);
    }
    return n;
  };
  return spec.type === 'integers' ? text.split(',').map(integer) : integer(text);
}

/** The flags of a bench as help lines. */
export function formatFlags(flags: FlagSpecs): string {
  const rows = Object.entries(flags).map(([key, spec]) => {
    const value =
      spec.type === 'boolean' ? '' : spec.type === 'choice' ? ` <${spec.choices.join('|')}>` : spec.type === 'integers' ? ' <n,n,...>' : ' <n>';
    const fallback =
      spec.type === 'boolean' || spec.default === undefined
        ? ''
        : ` (default ${Array.isArray(spec.default) ? spec.default.join(',') : spec.default})`;
    return [`  ${flagName(key)}${value}`, `${spec.help}${fallback}`];
  });
  rows.push(['  --help', 'this text']);
  const width = Math.max(...rows.map(([left]) => left.length));
  return rows.map(([left, right]) => `${left.padEnd(width)}  ${right}`).join('\n');
}

/** A bench module as bench/run.ts and its own `require.main` start it. */
export interface Bench<S extends FlagSpecs> {
  /** What it measures, one line. */
  summary: string;
  flags: S;
  run(options: BenchOptions<S>): Promise<unknown>;
}

/**
 * Runs a bench file started directly (`node -r ./scripts/register.js bench/x.bench.ts [flags]`): --help prints
 * its flags, a bad flag exits 2 naming it, a failure exits 1 with its stack.
 */
export function runBenchFile<S extends FlagSpecs>(file: string, bench: Bench<S>, argv: readonly string[] = process.argv.slice(2)): void {
  let options: BenchOptions<S> | 'help';
  try {
    options = parseBenchArgs(bench.flags, argv);
  } catch (error) {
    process.stderr.write(`${file}: ${(error as Error).message}\n`);
    process.exit(2);
  }
  if (options === 'help') {
    process.stdout.write(`${bench.summary}\nusage: node -r ./scripts/register.js ${file} [flags]\n${formatFlags(bench.flags)}\n`);
    return;
  }
  bench.run(options).then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exit(1);
    },
  );
}
