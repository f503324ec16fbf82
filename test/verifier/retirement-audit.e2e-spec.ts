/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import { Logger } from '@nestjs/common';
import { loadIris } from '@lethe/unlearning';
import { verifyLog, verifyModel, verifyReceipt } from '@lethe/verifier';
import { ChainFixture, startChainFixture } from '../contracts/support/chain-fixture';
import { uploadDataset } from '../support/api-data';
import { TestDatabase } from '../support/database';
import { JobHarness, startJobHarness } from '../support/job-harness';
import { keepOutOfRetirement, serveAgain } from '../support/unretired-version';
import { startAlteringProxy } from './support/altering-proxy';
import { useTamperedCopies } from './support/anchored-log';
import { anchorerFor, forgetSubject, stopKeepingDatabase, trainSmallModel } from './support/iris-history';
import { runCli } from './support/run-cli';

interface History {
  /** Each history is anchored on a chain of its own (one AuditAnchor holds one history). */
  chain: ChainFixture;
  template: TestDatabase;
  modelId: string;
  requestId: string;
  /** One of alice's sample commitments. */
  commitment: string;
  unlearnIndex: number;
}

/**
 * What an auditor finds about retirement, from outside: a real history (iris, a SISA model, alice's samples
 * forgotten, anchored), honest, and one whose operator kept the version that learned alice in service and out
 * of the log (the retirement skipped). verify-receipt proves from the BATCH_LEARNED batch roots which versions
 * learned her commitment and fails when one is not retired after her request; verify-log fails when a version
 * before an unlearned one is not retired.
 */
describe('retirement as an auditor sees it: verify-receipt, verify-log, verify-model', () => {
  let honest: History;
  let skipped: History;

  /** Builds a history; `operator` runs SQL around the forget, as an operator with database rights would. */
  async function buildHistory(name: string, operator: { before?: (h: JobHarness, modelId: string) => Promise<void>; after?: (h: JobHarness, modelId: string) => Promise<void> } = {}): Promise<History> {
    const chain = await startChainFixture();
    const h = await startJobHarness(name);
    const anchorer = anchorerFor(h, chain);
    try {
      const samples = loadIris().filter((_, i) => i % 3 === 0);
      const { datasetId, commitments } = await uploadDataset(h, samples, { subjectOf: (_, i) => (i === 4 || i === 30 ? 'alice' : `subject-${i}`) });
      const modelId = await trainSmallModel(h, datasetId, 'retire-audit');
      await anchorer.anchor();
      await operator.before?.(h, modelId);
      const forget = await forgetSubject(h, datasetId, 'alice');
      await operator.after?.(h, modelId);
      await anchorer.anchor();
      const [row]: { unlearn_ledger_index: string }[] = await h.dataSource.query(
        `SELECT unlearn_ledger_index FROM model_versions WHERE model_id = $1 AND version = 2`,
        [modelId],
      );
      return { chain, template: h.db, modelId, requestId: forget.id, commitment: commitments.get(samples[4].externalId)!, unlearnIndex: Number(row.unlearn_ledger_index) };
    } finally {
      await anchorer.stop();
      await stopKeepingDatabase(h);
    }
  }

  beforeAll(async () => {
    Logger.overrideLogger(false);
    honest = await buildHistory('retire_honest');
    skipped = await buildHistory('retire_skipped', {
      // Version 1 kept out of the pass's retirement (it logs no VERSION_RETIRED for it), then back in service.
      before: (h, modelId) => keepOutOfRetirement(h.dataSource, modelId, 1),
      after: (h, modelId) => serveAgain(h.dataSource, modelId, 1),
    });
  }, 300_000);

  const honestCopies = useTamperedCopies(() => honest.template);
  const skippedCopies = useTamperedCopies(() => skipped.template);
  afterAll(async () => {
    await honest?.template.drop();
    await skipped?.template.drop();
    await honest?.chain.stop();
    await skipped?.chain.stop();
  });

  it('honest: the receipt proves which version learned the commitment and that it was retired after the request; verify-log and verify-model agree', async () => {
    const { url } = await honestCopies.serve();
    const report = await verifyReceipt({ apiUrl: url, rpcUrl: honest.chain.node.rpcUrl, commitment: honest.commitment });
    expect(report.failures).toEqual([]);
    expect(report.ok).toBe(true);
    const { retirement } = report;
    expect(retirement.learnedIn.length).toBeGreaterThan(0);
    expect(retirement.learnedIn.every((b) => b.verified && b.type === 'BATCH_LEARNED' && b.modelId === honest.modelId)).toBe(true);
    expect(retirement.unlearnedIn).toEqual([expect.objectContaining({ index: honest.unlearnIndex, modelVersion: 2, verified: true })]);
    expect(retirement.retiredVersions).toEqual([
      expect.objectContaining({ index: honest.unlearnIndex + 1, type: 'VERSION_RETIRED', modelVersion: 1, forgetRequestIds: [honest.requestId], verified: true }),
    ]);
    expect(retirement.checkpointsDeleted).toEqual([expect.objectContaining({ type: 'CHECKPOINTS_DELETED', verified: true })]);
    expect(retirement.models).toEqual([{ modelId: honest.modelId, unlearnedVersion: 2, versions: [{ modelVersion: 1, retiredBy: honest.unlearnIndex + 1 }] }]);

    const log = await verifyLog({ apiUrl: url, rpcUrl: honest.chain.node.rpcUrl });
    expect(log.failures).toEqual([]);
    const model = await verifyModel({ apiUrl: url, rpcUrl: honest.chain.node.rpcUrl, modelId: honest.modelId, modelVersion: 1 });
    expect(model.ok).toBe(true);
    expect(model.models[0].retired).toEqual({ index: honest.unlearnIndex + 1, forgetRequestIds: [honest.requestId] });
    expect(model.models[0].checkpointsDeleted).toEqual([expect.objectContaining({ forgetRequestIds: [honest.requestId] })]);
    const latest = await verifyModel({ apiUrl: url, rpcUrl: honest.chain.node.rpcUrl, modelId: honest.modelId, modelVersion: 2 });
    expect(latest.models[0].retired).toBeNull();

    const cli = await runCli(['verify-receipt', honest.commitment, '--api', url, '--rpc', honest.chain.node.rpcUrl]);
    expect(cli.code).toBe(0);
    expect(cli.stdout).toContain(`model ${honest.modelId} version 1: retired at entry ${honest.unlearnIndex + 1} (VERSION_RETIRED)`);
  });

  it('a version that learned the commitment left unretired: verify-receipt and verify-log fail with NOT_RETIRED, lethe-audit exits 1', async () => {
    const { url } = await skippedCopies.serve();
    const report = await verifyReceipt({ apiUrl: url, rpcUrl: skipped.chain.node.rpcUrl, commitment: skipped.commitment });
    expect(report.ok).toBe(false);
    expect(report.failures.map((f) => f.code)).toEqual(['NOT_RETIRED']);
    expect(report.failures[0].message).toContain(`model ${skipped.modelId} version 1 learned commitment ${skipped.commitment}`);
    expect(report.retirement.models).toEqual([{ modelId: skipped.modelId, unlearnedVersion: 2, versions: [{ modelVersion: 1, retiredBy: null }] }]);

    const log = await verifyLog({ apiUrl: url, rpcUrl: skipped.chain.node.rpcUrl });
    expect(log.failures.map((f) => [f.code, f.index])).toEqual([['NOT_RETIRED', skipped.unlearnIndex]]);
    // Everything else about the log holds: the chain anchored exactly this history.
    expect(log.anchors.checked).toBe(log.anchors.onChain);

    const cli = await runCli(['verify-receipt', skipped.commitment, '--api', url, '--rpc', skipped.chain.node.rpcUrl, '--json']);
    expect(cli.code).toBe(1);
    expect((JSON.parse(cli.stdout) as { failures: { code: string }[] }).failures.map((f) => f.code)).toEqual(['NOT_RETIRED']);
    const cliLog = await runCli(['verify-log', '--api', url, '--rpc', skipped.chain.node.rpcUrl]);
    expect(cliLog.code).toBe(1);
    expect(cliLog.stdout).toContain('NOT_RETIRED');
  });

  it('a receipt that leaves the retirement out is not taken at its word: NOT_RETIRED (and the log itself still verifies)', async () => {
    const { url } = await honestCopies.serve();
    const proxy = await startAlteringProxy(url, async (path, upstream) => {
      if (!path.startsWith('/v1/receipts/')) return undefined;
      const receipt = JSON.parse(await upstream());
      return JSON.stringify({ ...receipt, retiredVersions: [] });
    });
    honestCopies.track(proxy);
    const report = await verifyReceipt({ apiUrl: proxy.url, rpcUrl: honest.chain.node.rpcUrl, commitment: honest.commitment });
    expect(report.failures.map((f) => f.code)).toEqual(['NOT_RETIRED']);
    expect((await verifyLog({ apiUrl: proxy.url, rpcUrl: honest.chain.node.rpcUrl })).ok).toBe(true);
  });
});
