/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Logger } from '@nestjs/common';
import request from 'supertest';
import { canonicalizeEvent, hashEvent, type LedgerEvent } from '@lethe/events';
import { toHex } from '@lethe/merkle';
import { loadIris } from '@lethe/unlearning';
import { VerifierError, verifyInclusionAgainstChain, verifyLog, verifyModel, verifyReceipt } from '@lethe/verifier';
import { ChainFixture, startChainFixture } from '../contracts/support/chain-fixture';
import { TestDatabase } from '../support/database';
import { startJobHarness } from '../support/job-harness';
import { startAlteringProxy, startForkingProxy } from './support/altering-proxy';
import { recomputeHead, tamper, useTamperedCopies } from './support/anchored-log';
import { anchorerFor, downloadOnnx, forgetSubject, stopKeepingDatabase, trainSmallModel } from './support/iris-history';
import { runCli } from './support/run-cli';
import { uploadDataset } from '../support/api-data';

/**
 * The tamper suite: a real history (iris uploaded, a SISA model trained, a data subject's samples
 * forgotten, anchored twice on a Hardhat chain), then one kind of tampering per case, with the database
 * (as an operator with superuser rights would) or with the service's answers (a lying proxy). Each kind
 * must be caught by the verifier library and by the lethe-audit CLI, and each case asserts which check
 * (failure code) caught it. The table of what caught what is printed at the end.
 */

interface Caught {
  kind: string;
  library: string[];
  cli: string[];
  exit: number | null;
}

type Entry = { index: number; event: LedgerEvent };

describe('tamper suite: each kind of tampering caught by the library and by lethe-audit', () => {
  let chain: ChainFixture;
  let template: TestDatabase;
  let dir: string;
  let entries: Entry[];
  let forget: { id: string; ledgerIndex: number; leafHash: string };
  let aliceCommitment: string;
  let onnx: Buffer;
  const caught: Caught[] = [];
  const rpc = () => chain.node.rpcUrl;

  const first = (type: LedgerEvent['type']): Entry => entries.find((e) => e.event.type === type)!;
  const last = (type: LedgerEvent['type']): Entry => entries.filter((e) => e.event.type === type).at(-1)!;

  beforeAll(async () => {
    Logger.overrideLogger(false);
    chain = await startChainFixture();
    dir = mkdtempSync(join(tmpdir(), 'lethe-tamper-'));
    const h = await startJobHarness('tamper');
    const anchorer = anchorerFor(h, chain);
    try {
      const http = () => request(h.app.getHttpServer());
      const samples = loadIris().filter((_, i) => i % 3 === 0);
      const { datasetId, commitments } = await uploadDataset(h, samples, {
        subjectOf: (_, i) => (i === 4 || i === 30 ? 'alice' : `subject-${i}`),
      });
      aliceCommitment = commitments.get(samples[4].externalId)!;
      const modelId = await trainSmallModel(h, datasetId, 'tamper');
      await anchorer.anchor(); // anchor 0: the training
      forget = await forgetSubject(h, datasetId, 'alice');
      await anchorer.anchor(); // anchor 1: the forgetting
      onnx = await downloadOnnx(h, h.ml, modelId, 2);
      const page = (await http().get('/v1/ledger/entries?start=0&limit=1000').expect(200)).body as { index: number; event: string }[];
      entries = page.map((e) => ({ index: e.index, event: JSON.parse(e.event) as LedgerEvent }));
    } finally {
      await anchorer.stop();
      await stopKeepingDatabase(h);
    }
    template = h.db;
    // The history has every kind of entry the cases tamper with, in this order.
    expect(entries.map((e) => e.event.type)).toEqual(
      expect.arrayContaining([
        'DATASET_REGISTERED',
        'SAMPLES_COMMITTED',
        'BATCH_LEARNED',
        'MODEL_PUBLISHED',
        'ANCHORED',
        'FORGET_REQUESTED',
        'UNLEARN_COMPLETED',
      ]),
    );
    expect(first('ANCHORED').index).toBeLessThan(forget.ledgerIndex);
    expect(last('ANCHORED').index).toBeGreaterThan(last('UNLEARN_COMPLETED').index);
  }, 300_000);

  const copies = useTamperedCopies(() => template);
  const { serve } = copies;

  afterAll(async () => {
    await template?.drop();
    await chain?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (caught.length > 0) {
      const list = (codes: string[]) => [...new Set(codes)].join(', ');
      const rows = caught.map((c) => `| ${c.kind} | ${list(c.library)} | ${list(c.cli)} (exit ${c.exit}) |`);
      // The suite's summary: which check caught each kind of tampering.
      console.log(['| tampering | library caught it with | lethe-audit caught it with |', '|---|---|---|', ...rows].join('\n'));
    }
  });

  /** Rewrites entry `index` to `event` with a matching leaf hash (the forger's best effort). */
  const rewrite = (index: number, event: LedgerEvent): [string, unknown[]] => [
    `UPDATE ledger_entries SET event = $1, leaf_hash = $2, type = $3 WHERE idx = $4`,
    [canonicalizeEvent(event), Buffer.from(hashEvent(event)), event.type, index],
  ];

  const codesOf = (failures: { code: string; index?: number; anchor?: number }[]) =>
    failures.map(
      (f) =>
        `${f.code}${f.index !== undefined && f.index !== null ? `@${f.index}` : ''}${
          f.anchor !== undefined && f.anchor !== null ? `#${f.anchor}` : ''
        }`,
    );

  /** verifyLog and `lethe-audit verify-log --json` on `url`: both must fail with `expected` among their codes. */
  async function expectLogCaught(kind: string, url: string, expected: string[]): Promise<void> {
    const [report, cli] = await Promise.all([
      verifyLog({ apiUrl: url, rpcUrl: rpc(), timeoutMs: 10_000 }),
      runCli(['verify-log', '--api', url, '--rpc', rpc(), '--json']),
    ]);
    const library = codesOf(report.failures);
    expect(report.ok).toBe(false);
    expect(library).toEqual(expect.arrayContaining(expected));
    expect(cli.code).toBe(1);
    const fromCli = codesOf(JSON.parse(cli.stdout).failures);
    expect(fromCli).toEqual(expect.arrayContaining(expected));
    caught.push({ kind, library, cli: fromCli, exit: cli.code });
  }

  it('the honest history verifies: verify-log, verify-entry of the forget request, verify-receipt, verify-model', async () => {
    const { url } = await serve();
    const report = await verifyLog({ apiUrl: url, rpcUrl: rpc() });
    expect(report.failures).toEqual([]);
    expect(report.anchors).toMatchObject({ onChain: 2, checked: 2, latestConsistent: true });
    const file = join(dir, 'v2.onnx');
    writeFileSync(file, onnx);
    const [log, entry, receipt, model] = await Promise.all([
      runCli(['verify-log', '--api', url, '--rpc', rpc()]),
      runCli(['verify-entry', String(forget.ledgerIndex), '--leaf-hash', forget.leafHash, '--api', url, '--rpc', rpc()]),
      runCli(['verify-receipt', aliceCommitment, '--api', url, '--rpc', rpc()]),
      runCli(['verify-model', file, '--api', url, '--rpc', rpc()]),
    ]);
    for (const out of [log, entry, receipt, model]) expect(out).toMatchObject({ code: 0, stderr: '' });
    expect(entry.stdout).toMatch(
      new RegExp(`^ok: entry ${forget.ledgerIndex} \\(FORGET_REQUESTED\\) is in checkpoint 1 .* it is the entry the service acknowledged`),
    );
  });

  it('1. an entry edited in place (a forget request made to name another reason): BAD_ENTRY at that index', async () => {
    const { url } = await serve([
      `UPDATE ledger_entries SET event = $1 WHERE idx = $2`,
      [canonicalizeEvent({ ...entries[forget.ledgerIndex].event, reason: 'none' } as LedgerEvent), forget.ledgerIndex],
    ]);
    await expectLogCaught('entry edited in place', url, [`BAD_ENTRY@${forget.ledgerIndex}`]);
  });

  it('2. an entry edited with its leaf hash and the head recomputed: the chain catches it (INCONSISTENT_WITH_CHAIN)', async () => {
    const published = first('MODEL_PUBLISHED');
    const forged = { ...published.event, metrics: { testAccuracy: 0.99 } } as LedgerEvent;
    const { url, db } = await serve(rewrite(published.index, forged));
    await recomputeHead(db);
    await expectLogCaught('entry edited, leaf + head recomputed', url, ['INCONSISTENT_WITH_CHAIN#0', 'INCONSISTENT_WITH_CHAIN#1']);
  });

  it('3. an entry deleted: BAD_ENTRY naming the missing index', async () => {
    const batch = first('BATCH_LEARNED');
    const { url } = await serve([`DELETE FROM ledger_entries WHERE idx = $1`, [batch.index]]);
    await expectLogCaught('entry deleted', url, [`BAD_ENTRY@${batch.index}`]);
  });

  it('4. two entries swapped: INCONSISTENT_WITH_CHAIN from the first anchor on', async () => {
    const a = first('BATCH_LEARNED').index;
    const b = a + 1;
    const { url } = await serve(
      [`UPDATE ledger_entries SET idx = 100000 WHERE idx = $1`, [a]],
      [`UPDATE ledger_entries SET idx = $1 WHERE idx = $2`, [a, b]],
      [`UPDATE ledger_entries SET idx = $1 WHERE idx = 100000`, [b]],
    );
    await expectLogCaught('entries reordered', url, ['INCONSISTENT_WITH_CHAIN#0', 'INCONSISTENT_WITH_CHAIN#1']);
  });

  it('5. an entry inserted (a batch the model never learned), head and anchor records shifted: INCONSISTENT_WITH_CHAIN', async () => {
    const at = first('MODEL_PUBLISHED').index;
    const inserted = {
      ...first('BATCH_LEARNED').event,
      batchRoot: createHash('sha256').update('extra batch').digest('hex'),
    } as LedgerEvent;
    const { url, db } = await serve(
      [`UPDATE ledger_entries SET idx = idx + 100000 WHERE idx >= $1`, [at]],
      [`UPDATE ledger_entries SET idx = idx - 99999 WHERE idx >= 100000`],
      [
        `INSERT INTO ledger_entries (idx, leaf_hash, type, event) VALUES ($1, $2, $3, $4)`,
        [at, Buffer.from(hashEvent(inserted)), inserted.type, canonicalizeEvent(inserted)],
      ],
      [`UPDATE anchors SET ledger_index = ledger_index + 1 WHERE ledger_index >= $1`, [at]],
    );
    await recomputeHead(db);
    await expectLogCaught('entry inserted', url, ['INCONSISTENT_WITH_CHAIN#0', 'INCONSISTENT_WITH_CHAIN#1']);
  });

  it("6. the stored checkpoint rewritten (head and checkpoint rows): ROOT_MISMATCH, and the latest anchor's consistency proof fails", async () => {
    const forgedRoot = createHash('sha256').update('forged root').digest();
    const { url } = await serve(
      [`UPDATE ledger_head SET root_hash = $1`, [forgedRoot]],
      [`UPDATE ledger_checkpoints SET root_hash = $1 WHERE tree_size = (SELECT max(tree_size) FROM ledger_checkpoints)`, [forgedRoot]],
    );
    await expectLogCaught('stored checkpoint rewritten', url, ['ROOT_MISMATCH', 'INCONSISTENT_WITH_CHAIN#1']);
  });

  it('7. a batch root replaced (BATCH_LEARNED made to name other samples), leaf and head recomputed: INCONSISTENT_WITH_CHAIN', async () => {
    const batch = last('BATCH_LEARNED');
    const forged = { ...batch.event, batchRoot: createHash('sha256').update('other samples').digest('hex') } as LedgerEvent;
    const { url, db } = await serve(rewrite(batch.index, forged));
    await recomputeHead(db);
    await expectLogCaught('batch root replaced', url, ['INCONSISTENT_WITH_CHAIN#1']);
  });

  it("8. a forget request dropped from the log (later entries and anchors shifted, head recomputed): verify-log and the requester's verify-entry catch it", async () => {
    const at = forget.ledgerIndex;
    const { url, db } = await serve(
      [`DELETE FROM ledger_entries WHERE idx = $1`, [at]],
      [`UPDATE ledger_entries SET idx = idx + 100000 WHERE idx > $1`, [at]],
      [`UPDATE ledger_entries SET idx = idx - 100001 WHERE idx >= 100000`],
      [`UPDATE anchors SET ledger_index = ledger_index - 1 WHERE ledger_index > $1`, [at]],
    );
    await recomputeHead(db);
    await expectLogCaught('forget request dropped', url, ['INCONSISTENT_WITH_CHAIN#1']);
    // The data subject holds {ledgerIndex, leafHash} from the 202 and checks it against the chain.
    const error = await verifyInclusionAgainstChain({ apiUrl: url, rpcUrl: rpc(), index: at, leafHash: forget.leafHash }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(VerifierError);
    expect(error).toMatchObject({ code: 'BAD_ENTRY', index: at });
    expect((error as Error).message).toMatch(/is not the entry the service acknowledged/);
    const cli = await runCli(['verify-entry', String(at), '--leaf-hash', forget.leafHash, '--api', url, '--rpc', rpc(), '--json']);
    expect(cli.code).toBe(1);
    expect(JSON.parse(cli.stdout).failures).toEqual([expect.objectContaining({ code: 'BAD_ENTRY', index: at })]);
  });

  it('9. an ANCHORED entry rewritten to a transaction the chain does not have: NOT_ANCHORED at its index', async () => {
    const anchored = last('ANCHORED');
    const forged = { ...anchored.event, txHash: `0x${createHash('sha256').update('no such tx').digest('hex')}` } as LedgerEvent;
    const { url, db } = await serve(rewrite(anchored.index, forged));
    await recomputeHead(db);
    await expectLogCaught('anchor transaction forged', url, [`NOT_ANCHORED@${anchored.index}#1`]);
  });

  it('10. two auditors shown two histories (a fork served to one of them): INCONSISTENT_WITH_CHAIN for the forked view', async () => {
    const { url } = await serve();
    const unlearned = last('UNLEARN_COMPLETED');
    const forkedEvent = { ...unlearned.event, requestIds: [] } as LedgerEvent;
    const forkedEntry = { index: unlearned.index, leafHash: toHex(hashEvent(forkedEvent)), event: canonicalizeEvent(forkedEvent) };
    const proxy = await startForkingProxy(url, forkedEntry);
    copies.track(proxy);
    // The auditor on the honest view passes; the one on the fork does not.
    expect((await verifyLog({ apiUrl: url, rpcUrl: rpc() })).ok).toBe(true);
    await expectLogCaught('fork shown to one auditor', proxy.url, ['INCONSISTENT_WITH_CHAIN#1']);
  });

  it('11. a model file swapped: verify-model says it is not a published model', async () => {
    const { url } = await serve();
    const swapped = Buffer.from(onnx);
    swapped[swapped.length - 1] ^= 1;
    const file = join(dir, 'swapped.onnx');
    writeFileSync(file, swapped);
    const sha = createHash('sha256').update(swapped).digest('hex');
    const [report, cli] = await Promise.all([
      verifyModel({ apiUrl: url, rpcUrl: rpc(), onnxSha256: sha }),
      runCli(['verify-model', file, '--api', url, '--rpc', rpc(), '--json']),
    ]);
    expect(report).toMatchObject({ ok: false, found: false, failures: [] });
    expect(cli.code).toBe(1);
    expect(JSON.parse(cli.stdout)).toMatchObject({ ok: false, found: false });
    caught.push({ kind: 'model file swapped', library: ['found: false'], cli: ['found: false'], exit: cli.code });
  });

  it("12. a forged receipt (the inclusion proof of alice's sample altered): BAD_PROOF", async () => {
    const { url } = await serve();
    const committed = first('SAMPLES_COMMITTED').index;
    const proxy = await startAlteringProxy(url, async (path, upstream) => {
      if (!path.startsWith('/v1/receipts/')) return undefined;
      const receipt = JSON.parse(await upstream());
      const [h] = receipt.committed.inclusionProof.proof as string[];
      receipt.committed.inclusionProof.proof[0] = (h[0] === '0' ? '1' : '0') + h.slice(1);
      return JSON.stringify(receipt);
    });
    copies.track(proxy);
    const [report, cli] = await Promise.all([
      verifyReceipt({ apiUrl: proxy.url, rpcUrl: rpc(), commitment: aliceCommitment }),
      runCli(['verify-receipt', aliceCommitment, '--api', proxy.url, '--rpc', rpc(), '--json']),
    ]);
    expect(codesOf(report.failures)).toEqual([`BAD_PROOF@${committed}#1`]);
    expect(cli.code).toBe(1);
    const fromCli = codesOf(JSON.parse(cli.stdout).failures);
    expect(fromCli).toEqual([`BAD_PROOF@${committed}#1`]);
    caught.push({ kind: 'receipt forged', library: codesOf(report.failures), cli: fromCli, exit: cli.code });
  });
});
