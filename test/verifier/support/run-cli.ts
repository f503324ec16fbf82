import { runScript, type ScriptResult } from '../../support/run-script';

export type CliResult = ScriptResult;

/** Runs lethe-audit as a user would, from the repository root; resolves with its exit code and output. */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return runScript('apps/cli/src/main.ts', args, env);
}
