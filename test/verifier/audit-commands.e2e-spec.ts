/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Logger } from '@nestjs/common';
import request from 'supertest';
import { describeRuntimeEnvelope, detectRuntimeEnvelope, loadIris } from '@lethe/unlearning';
import { verifyModel, verifyReceipt, type VerifyReceiptReport } from '@lethe/verifier';
import { ChainFixture, startChainFixture } from '../contracts/support/chain-fixture';
import { JobHarness, startJobHarness } from '../support/job-harness';
import { startAlteringProxy } from './support/altering-proxy';
import { SMALL_SISA, anchorerFor, downloadOnnx, forgetSubject, trainSmallModel } from './support/iris-history';
import { runCli } from './support/run-cli';
import { listenOnLoopback, subjectsByGroup, uploadDataset } from '../support/api-data';

/** code@index of each failure. */
const where = (report: VerifyReceiptReport) => report.failures.map((f) => `${f.code}${f.index !== undefined ? `@${f.index}` : ''}`);

/**
 * An iris-sized model trained and unlearned through the service, its log anchored on a Hardhat chain: the
 * auditor's verify-receipt, verify-model and replay, honest and against a lying service.
 */
describe('lethe-audit verify-receipt, verify-model and replay', () => {
  let chain: ChainFixture;
  let h: JobHarness;
  let api: string;
  let dir: string;
  let datasetId: string;
  let modelId: string;
  let requestId: string;
  let commitments: Map<string, string>;
  let committedIndex: number;
  let forgetIndex: number;
  /** Every third iris sample (50, balanced); alice's two are forgotten. */
  const samples = loadIris().filter((_, i) => i % 3 === 0);
  const alice = new Set([samples[4].externalId, samples[30].externalId]);
  const bob = samples[10].externalId;
  const versions: { version: number; onnxSha256: string; ledgerIndex: number; retireLedgerIndex?: number }[] = [];

  const http = () => request(h.app.getHttpServer());
  const asAuditor = (req: request.Test) => req.auth(h.auditor, { type: 'bearer' });
  const rpc = () => chain.node.rpcUrl;

  beforeAll(async () => {
    Logger.overrideLogger(false);
    chain = await startChainFixture();
    h = await startJobHarness('audit_cmds');
    api = await listenOnLoopback(h.app);
    dir = mkdtempSync(join(tmpdir(), 'lethe-audit-cmds-'));

    ({ datasetId, commitments, ledgerIndices: [committedIndex] } = await uploadDataset(h, samples, { subjectOf: subjectsByGroup({ alice }) }));

    modelId = await trainSmallModel(h, datasetId, 'audit');
    // An auditor's copy of version 1, downloaded before it was retired (afterwards it is 410).
    writeFileSync(join(dir, 'v1.onnx'), await downloadOnnx(h, h.auditor, modelId, 1));
    const forget = await forgetSubject(h, datasetId, 'alice');
    requestId = forget.id;
    forgetIndex = forget.ledgerIndex;
    versions.push(...(await asAuditor(http().get(`/v1/models/${modelId}`)).expect(200)).body.versions);
    expect(versions.map((v) => v.version)).toEqual([1, 2]);

    // Anchor everything so far, as the service's loop does.
    const anchorer = anchorerFor(h, chain);
    try {
      await anchorer.anchor();
    } finally {
      await anchorer.stop();
    }
    expect((await http().get('/v1/anchors/latest').expect(200)).body.ledgerIndex).toBeGreaterThan(versions[1].ledgerIndex);
  }, 300_000);

  afterAll(async () => {
    await h?.close();
    await chain?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  describe('verify-receipt', () => {
    it("proves where alice's sample was learned and where its forgetting was requested, against the chain", async () => {
      const commitment = commitments.get(samples[4].externalId)!;
      const report = await verifyReceipt({ apiUrl: api, rpcUrl: rpc(), commitment });
      expect(where(report)).toEqual([]);
      expect(report.ok).toBe(true);
      expect(report.learned).toMatchObject({ index: committedIndex, type: 'SAMPLES_COMMITTED', position: 4, count: 50, verified: true });
      expect(report.learned!.anchored).toMatchObject({
        anchor: 0,
        txHash: expect.stringMatching(/^0x[0-9a-f]{64}$/),
        blockNumber: expect.any(Number),
      });
      expect(report.forgetRequests).toEqual([
        expect.objectContaining({ index: forgetIndex, type: 'FORGET_REQUESTED', requestId, verified: true }),
      ]);
      expect(report.forgottenClaimed).toBe(true);

      const cli = await runCli(['verify-receipt', commitment, '--api', api, '--rpc', rpc()]);
      expect(cli.stderr).toBe('');
      expect(cli.code).toBe(0);
      expect(cli.stdout).toContain(`learned:   entry ${committedIndex} (SAMPLES_COMMITTED), position 4 of 50`);
      expect(cli.stdout).toContain(`forgotten: entry ${forgetIndex} (FORGET_REQUESTED ${requestId}, completed)`);
    });

    it('exits 2 with a clear message for a malformed commitment', async () => {
      const cli = await runCli(['verify-receipt', 'ABC', '--api', api, '--rpc', rpc()]);
      expect(cli.code).toBe(2);
      expect(cli.stderr).toContain('must be 32 bytes of lowercase hex');
      await expect(verifyReceipt({ apiUrl: api, rpcUrl: rpc(), commitment: 'ab'.repeat(31) })).rejects.toMatchObject({
        code: 'INVALID_ARGUMENT',
      });
    });

    /** verifyReceipt through a proxy that rewrites the receipt of `externalId` with `forge`. */
    async function forged(
      externalId: string,
      forge: (receipt: any) => Promise<void> | void,
    ): Promise<{ report: VerifyReceiptReport; url: string; commitment: string }> {
      const commitment = commitments.get(externalId)!;
      const proxy = await startAlteringProxy(api, async (path, upstream) => {
        if (!path.startsWith('/v1/receipts/')) return undefined;
        const receipt = JSON.parse(await upstream());
        await forge(receipt);
        return JSON.stringify(receipt);
      });
      try {
        return {
          report: await verifyReceipt({ apiUrl: proxy.url, rpcUrl: rpc(), commitment, contract: chain.client.address }),
          url: proxy.url,
          commitment,
        };
      } finally {
        await proxy.close();
      }
    }

    it('catches a wrong inclusion proof (BAD_PROOF) and a wrong commitment proof (BAD_PROOF)', async () => {
      const flip = (h: string) => (h[0] === '0' ? '1' : '0') + h.slice(1);
      const { report } = await forged(bob, (r) => {
        r.committed.inclusionProof.proof[0] = flip(r.committed.inclusionProof.proof[0]);
      });
      expect(where(report)).toEqual([`BAD_PROOF@${committedIndex}`]);
      expect(report.ok).toBe(false);
      const second = await forged(bob, (r) => {
        r.committed.commitmentProof[1] = flip(r.committed.commitmentProof[1]);
      });
      expect(where(second.report)).toEqual([`BAD_PROOF@${committedIndex}`]);
      expect(second.report.failures[0].message).toContain('commitmentsRoot');
    });

    it('catches a forget request that does not name the commitment, and an entry of another type (BAD_ENTRY)', async () => {
      const aliceReceipt = (
        await http()
          .get(`/v1/receipts/${commitments.get(samples[4].externalId)}`)
          .expect(200)
      ).body;
      // bob's receipt claiming alice's (genuine, anchored) forget request.
      const { report } = await forged(bob, (r) => {
        r.forgetRequests = aliceReceipt.forgetRequests;
      });
      expect(where(report)).toEqual([`BAD_ENTRY@${forgetIndex}`]);
      expect(report.failures[0].message).toContain('does not name commitment');
      // alice's receipt with its SAMPLES_COMMITTED entry passed off as the forget request.
      const other = await forged(samples[4].externalId, (r) => {
        r.forgetRequests[0] = { ...r.committed, requestId: r.forgetRequests[0].requestId, state: 'completed' };
        // (What retirement entries it has name the request it no longer shows: left out, this case is about the request alone.)
        Object.assign(r, { learnedIn: [], unlearnedIn: [], retiredVersions: [], checkpointsDeleted: [] });
      });
      expect(where(other.report)).toEqual([`BAD_ENTRY@${committedIndex}`]);
      expect(other.report.failures[0].message).toContain('not FORGET_REQUESTED');
    });

    it('catches a root the chain never held: a size never anchored (NOT_ANCHORED), another root (INCONSISTENT_WITH_CHAIN)', async () => {
      const anchored = (await http().get('/v1/anchors/latest').expect(200)).body;
      const size = anchored.treeSize - 1;
      const honest = (await http().get(`/v1/ledger/proofs/inclusion?index=${committedIndex}&treeSize=${size}`).expect(200)).body;
      const { report, commitment } = await forged(bob, (r) => {
        r.committed.inclusionProof = { treeSize: size, rootHash: honest.rootHash, proof: honest.proof };
      });
      expect(where(report)).toEqual([`NOT_ANCHORED@${committedIndex}`]);

      const other = await forged(bob, (r) => {
        r.committed.inclusionProof.rootHash = 'ab'.repeat(32);
      });
      expect(where(other.report)).toEqual([`INCONSISTENT_WITH_CHAIN@${committedIndex}`]);

      // An anchor transaction the chain does not have.
      const tx = await forged(bob, (r) => {
        r.committed.anchor.txHash = `0x${'cd'.repeat(32)}`;
      });
      expect(where(tx.report)).toEqual([`NOT_ANCHORED@${committedIndex}`]);
      expect(tx.report.failures[0].message).toContain('the transaction is not on chain');

      // The CLI says so too, and exits 1.
      const proxy = await startAlteringProxy(api, async (path, upstream) => {
        if (!path.startsWith('/v1/receipts/')) return undefined;
        const r = JSON.parse(await upstream());
        r.committed.inclusionProof = { treeSize: size, rootHash: honest.rootHash, proof: honest.proof };
        return JSON.stringify(r);
      });
      try {
        const cli = await runCli(['verify-receipt', commitment, '--api', proxy.url, '--rpc', rpc(), '--json']);
        expect(cli.code).toBe(1);
        expect(JSON.parse(cli.stdout).failures).toEqual([expect.objectContaining({ code: 'NOT_ANCHORED', index: committedIndex })]);
      } finally {
        await proxy.close();
      }
    });
  });

  describe('verify-model', () => {
    async function download(version: number): Promise<string> {
      const file = join(dir, `v${version}.onnx`);
      writeFileSync(file, await downloadOnnx(h, h.auditor, modelId, version));
      return file;
    }

    it('names the model and version of a downloaded file, its batches and the forget requests it reflects', async () => {
      const file = await download(2);
      const cli = await runCli(['verify-model', file, '--api', api, '--rpc', rpc(), '--json']);
      expect(cli.stderr).toBe('');
      expect(cli.code).toBe(0);
      const report = JSON.parse(cli.stdout);
      expect(report).toMatchObject({ ok: true, found: true, onnxSha256: versions[1].onnxSha256 });
      expect(report.models).toHaveLength(1);
      const [m] = report.models;
      expect(m).toMatchObject({ modelId, modelVersion: 2, index: versions[1].ledgerIndex, anchor: { anchor: 0 }, runtime: detectRuntimeEnvelope(), privacy: null });
      expect(m.batches).toHaveLength(4);
      expect(m.batches.reduce((n: number, b: { count: number }) => n + b.count, 0)).toBe(48);
      expect(m.forgetRequests).toEqual([expect.objectContaining({ requestId, index: forgetIndex, commitments: 2, unlearnVersion: 2 })]);

      const text = await runCli(['verify-model', join(dir, 'v1.onnx'), '--api', api, '--rpc', rpc()]);
      expect(text.code).toBe(0);
      expect(text.stdout).toContain(`model ${modelId} version 1: MODEL_PUBLISHED at entry ${versions[0].ledgerIndex}`);
      expect(text.stdout).toContain('reflects no forget request');
      expect(text.stdout).toContain(`trained under ${describeRuntimeEnvelope(detectRuntimeEnvelope())}`);
      expect(text.stdout).toContain('    privacy: none recorded (trained without differential privacy)');
      // Its file is gone from the service, and why: the version learned alice.
      expect(text.stdout).toContain(`RETIRED at entry ${versions[0].retireLedgerIndex} (VERSION_RETIRED) for forget request(s) ${requestId}`);
      expect(text.stdout).toMatch(/checkpoint\(s\) of its lineage deleted at entry \d+ \(CHECKPOINTS_DELETED\)/);
      await request(h.app.getHttpServer()).get(`/v1/models/${modelId}/versions/1/onnx`).auth(h.auditor, { type: 'bearer' }).expect(410);
      const v1 = await verifyModel({ apiUrl: api, rpcUrl: rpc(), onnxSha256: versions[0].onnxSha256 });
      expect(v1.models[0].batches.reduce((n, b) => n + b.count, 0)).toBe(50);
    });

    it('says a tampered file is not a published model (exit 1)', async () => {
      const file = await download(2);
      const bytes = readFileSync(file);
      bytes[bytes.length - 1] ^= 1;
      writeFileSync(file, bytes);
      const cli = await runCli(['verify-model', file, '--api', api, '--rpc', rpc()]);
      expect(cli.code).toBe(1);
      expect(cli.stdout).toContain('not a published model');
    });
  });

  describe('replay', () => {
    const write = (name: string, text: string) => {
      const file = join(dir, name);
      writeFileSync(file, text);
      return file;
    };
    const surviving = samples.filter((s) => !alice.has(s.externalId));

    it("retrains version 2 from the auditor's copy of the surviving data to the published hash", async () => {
      const file = write('surviving.ndjson', surviving.map((s) => JSON.stringify(s)).join('\n'));
      const cli = await runCli(['replay', '--model', modelId, '--version', '2', '--data', file, '--api', api, '--rpc', rpc()], {
        LETHE_API_KEY: h.auditor,
      });
      expect(cli.stderr).toBe('');
      expect(cli.code).toBe(0);
      expect(cli.stdout).toContain(`ONNX SHA-256 ${versions[1].onnxSha256} equals the published one`);
      // Both envelopes, and whether the same bytes were to be expected: here one machine published and replays.
      const here = describeRuntimeEnvelope(detectRuntimeEnvelope());
      expect(cli.stdout).toContain(`  published under: ${here}\n  replayed under:  ${here}\n  byte equality: expected (the same runtime envelope)`);
    });

    it('exits 1 on a dataset that is not the one the version learned', async () => {
      // Version 2 replayed with alice's samples still in: the hash of version 1's data, not version 2's.
      const file = write(
        'all.csv',
        ['externalId,a,b,c,d,label', ...samples.map((s) => [s.externalId, ...s.features, s.label].join(','))].join('\n'),
      );
      const cli = await runCli(['replay', '--model', modelId, '--version', '2', '--data', file, '--api', api, '--api-key', h.auditor]);
      expect(cli.code).toBe(1);
      expect(cli.stdout).toContain(`the ledger published ${versions[1].onnxSha256}`);
      expect(cli.stdout).toContain(`gives ONNX SHA-256 ${versions[0].onnxSha256}`); // version 1's data, version 1's hash
    });

    it('replays a model created before epochsPerSlice existed with its full epochs per slice', async () => {
      // Every slice 2 epochs (SMALL_SISA's epochs): what models trained before the field; then its rows as stored then.
      const oldModel = await trainSmallModel(h, datasetId, 'audit-old', { epochsPerSlice: SMALL_SISA.epochs });
      await h.dataSource.query(
        `UPDATE models SET config = config - 'epochsPerSlice', engine_config = engine_config - 'epochsPerSlice' WHERE id = $1`,
        [oldModel],
      );
      const { body: described } = await asAuditor(http().get(`/v1/models/${oldModel}`)).expect(200);
      expect(described.epochsPerSlice).toEqual([2, 2]); // SISA's schedule would be [1, 1]
      const file = write('surviving-old.ndjson', surviving.map((s) => JSON.stringify(s)).join('\n'));
      const cli = await runCli(['replay', '--model', oldModel, '--version', '1', '--data', file, '--api', api, '--json'], { LETHE_API_KEY: h.auditor });
      expect(cli.stderr).toBe('');
      expect(JSON.parse(cli.stdout)).toMatchObject({ ok: true, publishedSha256: described.versions[0].onnxSha256, runtimeDifferences: [] });
    });
  });
});
