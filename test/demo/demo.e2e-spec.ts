import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { API_KEY_PREFIX } from '../../apps/api/src/keys/api-key.crypto';
import { runScript, type ScriptResult } from '../support/run-script';

type DemoRun = ScriptResult;

/** Runs `npm run demo -- <args>` as a user would (the same command line), from the repository root. */
function runDemo(args: string[], env: Record<string, string> = {}): Promise<DemoRun> {
  return runScript('scripts/demo.ts', args, env);
}

function match(text: string, pattern: RegExp): RegExpMatchArray {
  const found = text.match(pattern);
  if (!found) throw new Error(`the demo's output does not show ${pattern}:\n${text}`);
  return found;
}

describe('npm run demo', () => {
  it('uploads, trains, forgets a subject, waits for the anchor, passes verify-log, prints the portal URL, and stops with --exit', async () => {
    const run = await runDemo(['--exit', '--samples', '300']);
    // On failure, the demo's error and the service's log tail are in stderr: show them.
    expect({ code: run.code, stderr: run.code === 0 ? '' : run.stderr }).toEqual({ code: 0, stderr: '' });
    const out = run.stdout;

    match(out, /Uploading 300 MNIST digits of 100 subjects/);
    match(out, /300 digits accepted/);
    match(out, /training finished in [\d.]+ s: version 1, MODEL_PUBLISHED at ledger index \d+/);
    const v1 = match(out, /model hash {2}v1 ([0-9a-f]{64})/)[1];
    const v2 = match(out, /^ +v2 ([0-9a-f]{64})$/m)[1];
    expect(v2).not.toBe(v1);
    const requested = Number(match(out, /FORGET_REQUESTED at ledger index (\d+), leaf hash [0-9a-f]{64}/)[1]);
    const unlearned = Number(match(out, /forget request completed in [\d.]+ s: version 2, UNLEARN_COMPLETED at ledger index (\d+)/)[1]);
    expect(unlearned).toBeGreaterThan(requested);
    // Version 1 learned the subject: retired in the append that published version 2.
    expect(Number(match(out, /version 1 retired \(VERSION_RETIRED at ledger index (\d+)\)/)[1])).toBe(unlearned + 1);
    // The evidence has the test set's numbers, the membership-inference AUC and the retrained reference.
    match(out, /membership-inference AUC +0\.\d{4} +0\.\d{4} +0\.\d{4}/);
    match(out, /retrained reference ONNX SHA-256 ([0-9a-f]{64})/);
    expect(match(out, /retrained reference ONNX SHA-256 ([0-9a-f]{64})/)[1]).toBe(v2);
    expect(out).not.toContain("not in this service's evidence");
    const [, treeSize, coveredIndex] = match(out, /unlearned version anchored after [\d.]+ s: tree size (\d+) > index (\d+)/);
    expect(Number(coveredIndex)).toBe(unlearned);
    expect(Number(treeSize)).toBeGreaterThan(unlearned);
    // verify-log's own report, then the demo's verdict on its exit code.
    match(out, /\| ok: \d+ entries re-hashed; root [0-9a-f]{64} at size \d+ matches the service's checkpoint/);
    match(out, /verify-log passed/);
    const base = match(out, /portal +(http:\/\/127\.0\.0\.1:\d+)\/portal\//)[1];
    match(out, /Service stopped \(code 0\)/);

    // --exit stopped the service and deleted the fresh data directory it made.
    await expect(fetch(`${base}/v1/health`)).rejects.toThrow();
    const dataDir = match(out, /data dir +(\S+) \(fresh/)[1];
    expect(dataDir.startsWith(tmpdir())).toBe(true);
    expect(existsSync(dataDir)).toBe(false);
    // Neither API key (both shaped lethe_...) nor any sample's features are printed.
    expect(out + run.stderr).not.toContain(API_KEY_PREFIX);
    expect(out + run.stderr).not.toContain('"features"');
  }, 240_000);

  it('names a service that cannot start, shows the tail of its log, exits 1, and keeps the --data-dir it was given', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'lethe-demo-test-'));
    try {
      // The service's environment is the demo's: a bad variable stops the service as it would stop `npm start`.
      const run = await runDemo(['--exit', '--samples', '30', '--data-dir', dataDir], { LOG_LEVEL: 'loud' });
      expect(run.code).toBe(1);
      match(run.stderr, /^demo: the service did not start: the service exited \(code 2\)$/m);
      match(run.stderr, /the service's last \d+ log lines:\n {2}lethe: bad configuration: LOG_LEVEL: must be one of/);
      match(run.stdout, new RegExp(`data dir +${dataDir} \\(yours; kept\\)`));
      expect(existsSync(dataDir)).toBe(true);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('refuses a bad --samples before starting anything', async () => {
    const run = await runDemo(['--samples', '0']);
    expect(run.code).not.toBe(0);
    match(run.stderr, /--samples <n>.*must be a positive integer/);
    expect(run.stdout).not.toContain('Starting the service');
  });
});
