/**
 * @jest-environment ./libs/unlearning/src/testing/onnx-environment.js
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { INestApplication, Logger } from '@nestjs/common';
import { Client } from 'pg';
import { chromium, type Browser, type Page } from 'playwright-core';
import request from 'supertest';
import { HARDHAT_DEV_PRIVATE_KEYS } from '@lethe/chain';
import { canonicalizeEvent, hashEvent } from '@lethe/events';
import { findFreePort } from '@lethe/postgres';
import { toHex } from '@lethe/merkle';
import { loadIris } from '@lethe/unlearning';
import { AnchoringLoop } from '../../apps/api/src/anchoring/anchoring-loop';
import { remoteChainConnector } from '../../apps/api/src/anchoring/chain-connection';
import { createApp } from '../../apps/api/src/app';
import { loadConfig } from '../../apps/api/src/config/config';
import { JobForgetRequestQueue } from '../../apps/api/src/forget-requests/forget-request.queue';
import { PgBossJobQueue } from '../../apps/api/src/jobs/job.queue';
import { ChainFixture, startChainFixture } from '../contracts/support/chain-fixture';
import { JobHarness, startJobHarness } from '../support/job-harness';
import { waitFor } from '../support/probe';
import { startAlteringProxy } from '../verifier/support/altering-proxy';
import { GatedForgetRequestQueue } from './support/gated-forget-queue';
import { CHROMIUM_ARGS, buildPortal, chromiumPath } from './support/portal-build';
import { SMALL_SISA } from '../verifier/support/iris-history';
import { listenOnLoopback, subjectsByGroup, uploadDataset } from '../support/api-data';
import { sharedTestKeyStore } from '../support/key-store';

const CHROMIUM = chromiumPath();
if (!CHROMIUM) {
  console.warn(
    `test/portal: browser tests skipped: no Chromium at ${
      process.env.CHROMIUM_PATH || '/usr/bin/chromium'
    } (apt-get install chromium, or set CHROMIUM_PATH)`,
  );
}
const describeWithChromium = CHROMIUM ? describe : describe.skip;

const DAY = 86_400;
const CHECKS = ['service', 'chain', 'entries', 'root', 'anchored-roots', 'consistency', 'anchor-transactions', 'retired', 'models', 'displayed'];

interface Entry {
  index: number;
  leafHash: string;
  event: string;
}

/**
 * An iris model trained and unlearned twice through the service, anchored on a Hardhat chain: alice's
 * request is anchored, the chain's clock moved 40 days, and only then unlearned (late under the 30-day
 * default); bob's is unlearned at once. The portal, built fresh, runs every check in Chromium.
 */
describeWithChromium('the regulator portal in Chromium', () => {
  let chain: ChainFixture;
  let h: JobHarness;
  let portalDir: string;
  let service: INestApplication;
  let portalUrl: string;
  let browser: Browser;
  let datasetId: string;
  let modelId: string;
  let aliceRequest: { id: string; ledgerIndex: number };
  let bobRequest: { id: string; ledgerIndex: number };
  let committedIndex: number;
  let entries: Entry[];
  let commitments: Map<string, string>;
  const samples = loadIris().filter((_, i) => i % 3 === 0);
  const alice = new Set([samples[4].externalId, samples[30].externalId]);
  const bob = samples[10].externalId;
  const pages: Page[] = [];

  const http = () => request(h.app.getHttpServer());
  const asMl = (req: request.Test) => req.auth(h.ml, { type: 'bearer' });

  async function anchorEverything(): Promise<void> {
    const key = HARDHAT_DEV_PRIVATE_KEYS[1];
    const config = loadConfig({ RPC_URL: chain.node.rpcUrl, CONTRACT_ADDRESS: chain.client.address, ANCHORER_PRIVATE_KEY: key });
    const loop = new AnchoringLoop(h.dataSource, h.ledger, remoteChainConnector(config.chain, { ANCHORER_PRIVATE_KEY: key }), {
      everyEntries: 1,
      everySeconds: 3600,
      confirmations: 1,
      replaceAfterSeconds: 3600,
      pollMs: 50,
    });
    try {
      await loop.tick(); // sends the anchor
      await loop.tick(); // confirms it, appends ANCHORED
    } finally {
      await loop.stop();
    }
  }

  async function waitForRequest(id: string): Promise<void> {
    const done = await waitFor(
      async () => (await asMl(http().get(`/v1/forget-requests/${id}`))).body,
      (r) => r.state === 'completed' || r.state === 'failed',
    );
    expect(done.state).toBe('completed');
  }

  beforeAll(async () => {
    Logger.overrideLogger(false);
    const built = buildPortal();
    built.catch(() => undefined);
    chain = await startChainFixture();
    const gate = new GatedForgetRequestQueue();
    h = await startJobHarness('portal', { forgetRequestQueue: gate });

    ({ datasetId, commitments, ledgerIndices: [committedIndex] } = await uploadDataset(h, samples, { subjectOf: subjectsByGroup({ alice }) }));
    const created = await asMl(http().post('/v1/models'))
      .send({ datasetId, ...SMALL_SISA, seed: 'portal', evaluation: { membership: { shadowModels: 4, canaries: 100 } } })
      .expect(202);
    modelId = created.body.modelId;
    const job = await waitFor(
      async () => (await asMl(http().get(`/v1/jobs/${created.body.jobId}`))).body,
      (j) => j.state === 'completed' || j.state === 'failed',
    );
    if (job.state !== 'completed') throw new Error(`training failed: ${JSON.stringify(job)}`);

    // Alice's request is logged and anchored; 40 days pass on the chain before it is unlearned.
    aliceRequest = (await asMl(http().post('/v1/forget-requests')).send({ datasetId, subjectId: 'alice', reason: 'erasure' }).expect(202))
      .body;
    await anchorEverything();
    await chain.provider.send('evm_increaseTime', [40 * DAY]);
    await gate.release(new JobForgetRequestQueue(new PgBossJobQueue(h.boss)));
    await waitForRequest(aliceRequest.id);
    bobRequest = (
      await asMl(http().post('/v1/forget-requests'))
        .send({ datasetId, externalIds: [bob], reason: 'erasure' })
        .expect(202)
    ).body;
    await waitForRequest(bobRequest.id);
    await anchorEverything();

    // The service the browser talks to: the same database, the portal just built, the fixture's chain suggested.
    portalDir = await built;
    service = await createApp({
      keyStore: await sharedTestKeyStore(),
      config: loadConfig({
        DATABASE_URL: h.db.url,
        ANCHORING: 'off',
        DATA_DIR: h.dataDir,
        PORTAL_DIR: portalDir,
        PORTAL_RPC_URL: chain.node.rpcUrl,
      }),
      dataSource: h.dataSource,
      ledger: h.ledger,
    });
    portalUrl = await listenOnLoopback(service);
    const { treeSize } = (await request(portalUrl).get('/v1/ledger/checkpoint').expect(200)).body;
    entries = ((await request(portalUrl).get(`/v1/ledger/entries?start=0&limit=${treeSize}`).expect(200)).body as Entry[]).sort(
      (a, b) => a.index - b.index,
    );
    browser = await chromium.launch({ executablePath: CHROMIUM!, args: CHROMIUM_ARGS });
  }, 300_000);

  afterEach(async () => {
    while (pages.length) await pages.pop()!.close();
  });

  afterAll(async () => {
    await browser?.close();
    await service?.close();
    await h?.close();
    await chain?.stop();
    if (portalDir) rmSync(portalDir, { recursive: true, force: true });
  });

  async function open(url: string, ready = '[data-testid=timeline] li'): Promise<{ page: Page; requested: string[]; errors: string[] }> {
    const page = await browser.newPage();
    // Deadlines for a loaded machine (Playwright's default is 30 s): each waits for something that does show.
    page.setDefaultTimeout(120_000);
    pages.push(page);
    const requested: string[] = [];
    const errors: string[] = [];
    page.on('request', (r) => requested.push(r.url()));
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    await page.goto(url);
    try {
      await page.waitForSelector('body[data-loaded=true]', { timeout: 120_000 });
      await page.waitForSelector(ready, { timeout: 60_000 });
    } catch (err) {
      const shown = await page.evaluate(() => document.body.innerText.slice(0, 2000));
      throw new Error(`the portal did not show the log: ${(err as Error).message}\npage: ${shown}\nerrors: ${errors.join('\n')}`);
    }
    return { page, requested, errors };
  }

  /** PORTAL_SCREENSHOT_DIR=/some/dir saves full-page screenshots for a person to look at. */
  async function screenshot(page: Page, name: string): Promise<void> {
    const dir = process.env.PORTAL_SCREENSHOT_DIR;
    if (dir) await page.screenshot({ path: join(dir, `${name}.png`), fullPage: true });
  }

  async function runVerify(page: Page): Promise<void> {
    await page.click('nav a[data-page=verify]');
    await page.click('[data-testid=verify]');
    await page.waitForSelector('[data-testid=verify-result]', { timeout: 120_000 });
  }

  const statuses = (page: Page) =>
    page.$$eval('li[data-check]', (items) =>
      Object.fromEntries(items.map((li) => [li.getAttribute('data-check'), li.getAttribute('data-status')])),
    );
  const failuresOf = (page: Page, check: string) =>
    page.$$eval(`li[data-check="${check}"] li.failure`, (items) =>
      items.map((li) => ({
        code: li.getAttribute('data-code'),
        index: li.getAttribute('data-index'),
        anchor: li.getAttribute('data-anchor'),
        text: li.textContent ?? '',
      })),
    );
  const typeOf = (e: Entry) => (JSON.parse(e.event) as { type: string }).type;

  it('on an honest server: the timeline, anchors, lineage, evidence and timing, and every check passes in the browser', async () => {
    const { page, requested, errors } = await open(`${portalUrl}/portal/`);
    expect(await page.$$eval('[data-testid=timeline] li', (li) => li.length)).toBe(entries.length);
    expect(await page.inputValue('[data-testid=rpc-url]')).toBe(chain.node.rpcUrl);

    // Filters: forget events only, then one model's events only.
    await page.selectOption('[data-testid=filter-type]', 'forget');
    const forgetTypes = await page.$$eval('[data-testid=timeline] li', (li) => li.map((l) => l.getAttribute('data-type')));
    const forgetKind = ['FORGET_REQUESTED', 'UNLEARN_COMPLETED', 'VERSION_RETIRED', 'CHECKPOINTS_DELETED', 'EVIDENCE_RECORDED'];
    expect(forgetTypes).toEqual(entries.map(typeOf).filter((t) => forgetKind.includes(t)));
    expect(forgetTypes.filter((t) => t === 'VERSION_RETIRED')).toHaveLength(2);
    expect(forgetTypes.filter((t) => t === 'FORGET_REQUESTED')).toHaveLength(2);
    expect(forgetTypes.filter((t) => t === 'EVIDENCE_RECORDED')).toHaveLength(2);
    await page.selectOption('[data-testid=filter-type]', '');
    await page.selectOption('[data-testid=filter-modelId]', modelId);
    const modelEntries = entries
      .filter((e) => (JSON.parse(e.event) as { modelId?: string }).modelId === modelId)
      .map((e) => String(e.index));
    expect(await page.$$eval('[data-testid=timeline] li', (li) => li.map((l) => l.getAttribute('data-index')))).toEqual(modelEntries);
    await page.selectOption('[data-testid=filter-modelId]', '');
    await page.selectOption('[data-testid=filter-datasetId]', datasetId);
    expect(await page.$$eval('[data-testid=timeline] li', (li) => li.every((l) => l.textContent!.includes(`dataset`)))).toBe(true);

    // Anchors: both, each matching the chain (root and transaction), with block and confirmations.
    await page.click('nav a[data-page=anchors]');
    const anchorRows = await page.$$eval('[data-testid=anchors] tbody tr', (rows) =>
      rows.map((r) => ({ cls: r.className, verdict: r.querySelector('.verdict')!.textContent })),
    );
    expect(anchorRows).toEqual([
      { cls: 'good', verdict: 'root and transaction match' },
      { cls: 'good', verdict: 'root and transaction match' },
    ]);

    // Models: versions 1..3, lineage with alice's and bob's requests, evidence charts before and after.
    await page.click('nav a[data-page=models]');
    expect(await page.$$eval(`article[data-model="${modelId}"] .version`, (v) => v.map((x) => x.getAttribute('data-version')))).toEqual([
      '1',
      '2',
      '3',
    ]);
    // Versions 1 and 2 learned what alice's and bob's requests forgot: greyed, each naming the request that retired it.
    expect(await page.$$eval(`article[data-model="${modelId}"] .version`, (v) => v.map((x) => x.getAttribute('data-state')))).toEqual([
      'retired',
      'retired',
      'live',
    ]);
    for (const [version, request] of [
      [1, aliceRequest],
      [2, bobRequest],
    ] as const) {
      const text = await page.textContent(`article[data-model="${modelId}"] .version[data-version="${version}"] [data-testid=retirement]`);
      expect(text).toContain(`by forget request(s) ${request.id}`);
      expect(text).toContain('CHECKPOINTS_DELETED');
    }
    expect(await page.$(`article[data-model="${modelId}"] .version[data-version="3"] [data-testid=retirement]`)).toBeNull();
    const v3 = `article[data-model="${modelId}"] .version[data-version="3"]`;
    expect(await page.$$eval(`${v3} [data-request]`, (li) => li.map((l) => l.getAttribute('data-request')))).toEqual([
      aliceRequest.id,
      bobRequest.id,
    ]);
    expect(await page.$$eval(`${v3} [data-testid=lineage-batches] tbody tr`, (rows) => rows.length)).toBe(4);
    // The service's evidence has retain and forget accuracy before and after (no test set, so no test accuracy or AUC).
    const evidenceBars = await page.$$eval(`${v3} [data-testid=evidence] rect[data-series]`, (r) =>
      r.map((x) => `${x.getAttribute('data-series')}: ${x.getAttribute('data-category')}`),
    );
    expect(evidenceBars).toEqual(
      expect.arrayContaining(['before: retain accuracy', 'after: retain accuracy', 'before: forget accuracy', 'after: forget accuracy']),
    );
    // The membership attack the model asked for: before, after and reference with their 95% intervals and the chance
    // level, on the ensemble and per shard model (100 kept-out canaries resolve 1% FPR, not 0.1%).
    const membership = `${v3} [data-testid=membership]`;
    expect(await page.textContent(membership)).toContain('100 injected canaries vs 100 kept out');
    const membershipBars = await page.$$eval(`${membership} rect[data-series]`, (r) =>
      r.map((x) => `${x.getAttribute('data-series')}: ${x.getAttribute('data-category')}`),
    );
    expect(membershipBars.sort()).toEqual(
      ['before', 'after', 'reference']
        .flatMap((side) => ['ensemble', 'per member'].flatMap((attack) => [`${side}: TPR at 1% FPR (${attack})`, `${side}: AUC (${attack})`]))
        .sort(),
    );
    expect(await page.$$eval(`${membership} g.interval`, (g) => g.length)).toBe(12);
    expect(await page.$$eval(`${membership} line.mark[data-category]`, (l) => l.map((x) => x.getAttribute('data-category')))).toEqual([
      'TPR at 1% FPR (ensemble)',
      'AUC (ensemble)',
      'TPR at 1% FPR (per member)',
      'AUC (per member)',
    ]);
    const unlearnEvidence = entries.filter((e) => typeOf(e) === 'UNLEARN_COMPLETED').map((e) => JSON.parse(e.event).evidence);
    expect(await page.textContent(`${v3} [data-testid=evidence] h5`)).toContain(`${unlearnEvidence[1].forgottenCount} forgotten`);
    // Published first, the evidence after: the heading names the EVIDENCE_RECORDED entry it comes from.
    const recorded = entries.filter((e) => typeOf(e) === 'EVIDENCE_RECORDED');
    expect(recorded).toHaveLength(2);
    expect(await page.textContent(`${v3} [data-testid=evidence] h5`)).toContain(`EVIDENCE_RECORDED entry #${recorded[1].index}`);
    expect(await page.$(`${v3} [data-testid=evidence-pending]`)).toBeNull();

    // Version 1 was trained and evaluated before it was published; version 3 was published before anything was
    // evaluated (its MODEL_PUBLISHED.metrics hold counts only: its accuracies are the evidence's, drawn above).
    const metricBars = (version: number) =>
      page.$$eval(`article[data-model="${modelId}"] .version[data-version="${version}"] svg.chart rect[data-series=value]`, (r) =>
        r.map((x) => x.getAttribute('data-category')),
      );
    expect(await metricBars(1)).toEqual(['trainAccuracy']);
    expect(await metricBars(3)).toEqual([]);
    // Dataset versions: one row per DATASET_VERSIONED of the dataset (its uploads and the forgets that erased samples).
    const datasetVersions = entries.filter((e) => typeOf(e) === 'DATASET_VERSIONED' && JSON.parse(e.event).datasetId === datasetId);
    expect(datasetVersions.length).toBeGreaterThan(1);
    expect(await page.$$eval(`[data-testid=dataset-versions] table[data-dataset="${datasetId}"] tbody tr`, (rows) => rows.length)).toBe(
      datasetVersions.length,
    );
        await screenshot(page, 'models');
    // Timing: alice's request took 40 days by the chain's clock (late); bob's none.
    await page.click('nav a[data-page=timing]');
    const lateness = () =>
      page.$$eval('[data-testid=timing] tbody tr', (rows) =>
        rows.map((r) => [r.getAttribute('data-request'), r.getAttribute('data-late')]),
      );
    expect(await lateness()).toEqual([
      [aliceRequest.id, 'true'],
      [bobRequest.id, 'false'],
    ]);
    expect(await page.textContent(`[data-testid=timing] tr[data-request="${aliceRequest.id}"]`)).toMatch(/4\d\.\d days/);
    expect(await page.$$eval('svg.chart rect.late', (r) => r.length)).toBe(1);
    expect(await page.textContent('[data-testid=timing-summary]')).toContain('0 extended (FORGET_EXTENDED)');
    await screenshot(page, 'timing');
    await page.fill('[data-testid=deadline]', '45');
    await page.dispatchEvent('[data-testid=deadline]', 'change');
    expect(await lateness()).toEqual([
      [aliceRequest.id, 'false'],
      [bobRequest.id, 'false'],
    ]);

    await runVerify(page);
    expect(await statuses(page)).toEqual(Object.fromEntries(CHECKS.map((c) => [c, 'pass'])));
    expect(await page.getAttribute('[data-testid=verify-result]', 'data-ok')).toBe('true');
    expect(await page.textContent('[data-testid=verify-result]')).toMatch(/^PASS/);
    await screenshot(page, 'verify-pass');

    // Nothing but the service and the chain's RPC endpoint was contacted; no script error.
    const origins = new Set(requested.map((u) => new URL(u).origin));
    expect([...origins].sort()).toEqual([new URL(portalUrl).origin, new URL(chain.node.rpcUrl).origin].sort());
    expect(errors).toEqual([]);
  });

  it('shows which worker trained which shard of each version, read from the service with a key typed on the models page', async () => {
    // What the API says (GET /v1/models/:id versions[].tasks): the training fanned out, one shard task per shard.
    const { body: model } = await request(portalUrl).get(`/v1/models/${modelId}`).auth(h.auditor, { type: 'bearer' }).expect(200);
    const tasksOf = (version: number) => (model.versions.find((v: { version: number }) => v.version === version)?.tasks ?? []) as { shard: number; worker: string; seconds: number }[];
    expect(tasksOf(1).map((t) => t.shard)).toEqual([0, 1]);
    const { page, requested, errors } = await open(`${portalUrl}/portal/`);
    await page.click('nav a[data-page=models]');
    const v1 = `article[data-model="${modelId}"] .version[data-version="1"]`;
    // Nothing is shown, nor asked of the service, before a key is given; the log alone does not say it.
    expect(await page.$(`${v1} [data-testid=shard-tasks]`)).toBeNull();
    expect(requested.some((u) => u.includes(`/v1/models/${modelId}`))).toBe(false);

    // A wrong key: the service refuses it, the portal says so and shows no table.
    await page.fill('[data-testid=shard-tasks-key]', 'not-a-key');
    await page.click('[data-testid=shard-tasks-show]');
    await page.waitForSelector('[data-testid=shard-tasks-error]', { timeout: 120_000 });
    expect(await page.textContent('[data-testid=shard-tasks-error]')).toContain('401');
    expect(await page.$(`${v1} [data-testid=shard-tasks]`)).toBeNull();

    // The auditor's key: each version lists the shards workers trained for it, as the API has them.
    await page.fill('[data-testid=shard-tasks-key]', h.auditor);
    await page.click('[data-testid=shard-tasks-show]');
    await page.waitForSelector(`${v1} [data-testid=shard-tasks]`, { timeout: 120_000 });
    for (const v of model.versions as { version: number }[]) {
      const selector = `article[data-model="${modelId}"] .version[data-version="${v.version}"]`;
      const rows = await page.$$eval(`${selector} [data-testid=shard-tasks] tbody tr`, (trs) => trs.map((tr) => Array.from(tr.querySelectorAll('td'), (td) => td.textContent)));
      expect(rows).toEqual(tasksOf(v.version).map((t) => [String(t.shard), t.worker, t.seconds.toFixed(2)]));
      if (rows.length === 0) expect(await page.$(`${selector} [data-testid=shard-tasks-none]`)).not.toBeNull();
    }
    // The key went to the service that served the portal, nowhere else, and was kept nowhere.
    expect(requested.filter((u) => u.includes('/v1/models/')).every((u) => u.startsWith(portalUrl))).toBe(true);
    expect(await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie + location.href)).not.toContain(h.auditor);
    expect(errors.filter((e) => !e.includes('401'))).toEqual([]);
  });

  it("verifies a data subject's commitment, and catches a pasted receipt whose proof was altered", async () => {
    const { page } = await open(`${portalUrl}/portal/receipt`, '[data-testid=receipt-input]');
    const commitment = commitments.get(samples[4].externalId)!;
    await page.fill('[data-testid=receipt-input]', commitment);
    await page.click('[data-testid=receipt-verify]');
    await page.waitForSelector('[data-testid=receipt-result]', { timeout: 120_000 });
    expect(await page.getAttribute('[data-testid=receipt-result]', 'data-ok')).toBe('true');
    // Committed, forgetting requested, learned by version 1's batch, checkpoints deleted: each proven.
    expect(await page.$$eval('ul.receipt li[data-verified]', (li) => li.map((l) => l.getAttribute('data-verified')))).toEqual([
      'true',
      'true',
      'true',
      'true',
    ]);
    expect(await page.textContent('ul.receipt')).toContain(`entry ${committedIndex} (SAMPLES_COMMITTED), position 4 of 50`);
    expect(await page.textContent('ul.receipt')).toContain(`request ${aliceRequest.id}`);
    expect(await page.$$eval('ul.receipt li[data-retired]', (li) => li.map((l) => l.getAttribute('data-retired')))).toEqual(['true']);
    expect(await page.textContent('ul.receipt')).toContain(`model ${modelId} version 1: retired in entry`);

    const receipt = (await request(portalUrl).get(`/v1/receipts/${commitment}`).expect(200)).body;
    const proof: string[] = receipt.committed.commitmentProof;
    proof[0] = (proof[0][0] === '0' ? '1' : '0') + proof[0].slice(1);
    await page.fill('[data-testid=receipt-input]', JSON.stringify(receipt));
    await page.click('[data-testid=receipt-verify]');
    await page.waitForSelector('[data-testid=receipt-result][data-ok=false]', { timeout: 120_000 });
    const failures = await page.$$eval('[data-testid=receipt-failures] li', (li) =>
      li.map((l) => [l.getAttribute('data-code'), l.getAttribute('data-index'), l.textContent]),
    );
    expect(failures).toEqual([['BAD_PROOF', String(committedIndex), expect.stringContaining('commitmentsRoot')]]);
  });

  it('runs the checks against the RPC URL and contract entered: a wrong contract or a dead endpoint FAIL, naming why', async () => {
    const { page } = await open(`${portalUrl}/portal/verify`, '[data-testid=verify]');
    await page.fill('[data-testid=contract]', chain.stranger.address);
    await page.click('[data-testid=apply-settings]');
    await page.waitForSelector('[data-testid=chain-error], [data-testid=verify]');
    await runVerify(page);
    expect(await page.getAttribute('[data-testid=verify-result]', 'data-ok')).toBe('false');
    expect(await failuresOf(page, 'chain')).toEqual([
      expect.objectContaining({
        code: 'NOT_AUDIT_ANCHOR',
        text: expect.stringContaining(`no contract at ${chain.stranger.address.toLowerCase()}`),
      }),
    ]);

    const dead = new URL(chain.node.rpcUrl);
    dead.port = String(await findFreePort());
    await page.fill('[data-testid=contract]', '');
    await page.fill('[data-testid=rpc-url]', dead.toString());
    await page.click('[data-testid=apply-settings]');
    await runVerify(page);
    expect(await failuresOf(page, 'chain')).toEqual([
      expect.objectContaining({ code: 'CHAIN_ERROR', text: expect.stringContaining('does not answer eth_chainId') }),
    ]);
    expect((await statuses(page)).entries).toBe('not run');
  });

  it('against a server that inflates the evidence (leaf hash recomputed): FAIL, naming the anchor whose root it contradicts', async () => {
    // The evidence follows each published version in its EVIDENCE_RECORDED entry.
    const unlearned = entries.find((e) => typeOf(e) === 'EVIDENCE_RECORDED')!;
    const forged = JSON.parse(unlearned.event);
    // The liar claims the forgotten samples are no longer recognised and nothing else was lost.
    forged.evidence.after.forgetAccuracy = forged.evidence.after.forgetAccuracy === 0 ? 0.01 : 0;
    forged.evidence.after.retainAccuracy = 1;
    const forgedEntry = { index: unlearned.index, leafHash: toHex(hashEvent(forged)), event: canonicalizeEvent(forged) };
    expect(forgedEntry.leafHash).not.toBe(unlearned.leafHash);
    const proxy = await startAlteringProxy(portalUrl, async (path, body) => {
      if (!path.startsWith('/v1/ledger/entries')) return undefined;
      return JSON.stringify((JSON.parse(await body()) as Entry[]).map((e) => (e.index === unlearned.index ? forgedEntry : e)));
    });
    try {
      const { page } = await open(`${proxy.url}/portal/`);
      await runVerify(page);
      expect(await page.getAttribute('[data-testid=verify-result]', 'data-ok')).toBe('false');
      expect(await page.textContent('[data-testid=verify-result]')).toMatch(/^FAIL/);
      await screenshot(page, 'verify-fail');
      const status = await statuses(page);
      expect(status).toMatchObject({
        service: 'pass',
        chain: 'pass',
        entries: 'pass',
        root: 'fail',
        'anchored-roots': 'fail',
        models: 'fail',
      });
      expect(await failuresOf(page, 'root')).toEqual([expect.objectContaining({ code: 'ROOT_MISMATCH' })]);
      expect(await failuresOf(page, 'anchored-roots')).toEqual([
        expect.objectContaining({ code: 'INCONSISTENT_WITH_CHAIN', anchor: '1', text: expect.stringContaining('anchor #1') }),
      ]);
      // The first anchor, before the forged entry, still holds.
      expect((await failuresOf(page, 'anchored-roots')).some((f) => f.anchor === '0')).toBe(false);
    } finally {
      await proxy.close();
    }
  });

  it('after an entry is edited in the database: FAIL, naming BAD_ENTRY and the entry', async () => {
    const target = entries.find((e) => e.index === bobRequest.ledgerIndex)!;
    const forged = canonicalizeEvent({ ...JSON.parse(target.event), reason: 'never asked' });
    const client = new Client({ connectionString: h.db.url });
    await client.connect();
    try {
      await client.query('SET session_replication_role = replica'); // as an operator with superuser rights: append-only triggers off
      await client.query('UPDATE ledger_entries SET event = $1 WHERE idx = $2', [forged, target.index]);
    } finally {
      await client.end();
    }
    const { page } = await open(`${portalUrl}/portal/`);
    await runVerify(page);
    expect(await page.getAttribute('[data-testid=verify-result]', 'data-ok')).toBe('false');
    expect((await statuses(page)).entries).toBe('fail');
    expect(await failuresOf(page, 'entries')).toEqual([
      expect.objectContaining({
        code: 'BAD_ENTRY',
        index: String(target.index),
        text: expect.stringMatching(new RegExp(`at entry ${target.index}: entry ${target.index}: the event hashes to`)),
      }),
    ]);
  });
});
