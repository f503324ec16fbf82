// A data subject's receipt verified in the portal, in Chromium, against the same verification in Node.
//   node -r ./scripts/register.js bench/portal-receipt.bench.ts [--runs 50]   (--help lists the flags)
// Uses DATABASE_URL's server when set (a database is created there), else a throwaway embedded PostgreSQL;
// a local Hardhat node holds the anchors. 150 iris samples are uploaded through the service, one forget
// request is made, the log is anchored by the service's AnchoringLoop, and the portal (built fresh) is
// opened in Debian's Chromium (CHROMIUM_PATH, /usr/bin/chromium unless set). Each browser run is the
// portal's own timing of verifyReceipt (performance.now around it), read from the page.
import { rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { Logger } from '@nestjs/common';
import { chromium } from 'playwright-core';
import { HARDHAT_DEV_PRIVATE_KEYS, deployAuditAnchor } from '@lethe/chain';
import { Ledger, openDatabase } from '@lethe/ledger';
import { loadIris } from '@lethe/unlearning';
import { verifyReceipt } from '@lethe/verifier';
import { Wallet } from 'ethers';
import { AnchoringLoop } from '../apps/api/src/anchoring/anchoring-loop';
import { remoteChainConnector } from '../apps/api/src/anchoring/chain-connection';
import { createApp } from '../apps/api/src/app';
import { loadConfig } from '../apps/api/src/config/config';
import { API_ENTITIES, API_MIGRATIONS } from '../apps/api/src/database/schema';
import { ApiKeyService } from '../apps/api/src/keys/api-key.service';
import { CHROMIUM_ARGS, buildPortal, chromiumPath } from '../test/portal/support/portal-build';
import { createDatabase } from './lib/bulk-load';
import { defineFlags, runBenchFile, type Bench, type BenchOptions } from './lib/args';
import { median, percentile, printTable } from './lib/table';
import { startBenchStack } from './lib/bench-stack';
import { sharedTestKeyStore } from '../test/support/key-store';

const flags = defineFlags({
  runs: { type: 'integer', min: 1, default: 50, help: 'receipt verifications timed in Chromium and in Node' },
});

export async function run({ runs }: BenchOptions<typeof flags>): Promise<void> {
  const executablePath = chromiumPath();
  if (!executablePath) {
    process.stdout.write(`\nportal receipt: skipped, no Chromium at ${process.env.CHROMIUM_PATH || '/usr/bin/chromium'}\n`);
    return;
  }
  Logger.overrideLogger(false);
  const cleanups: (() => Promise<void>)[] = [];
  try {
    const built = buildPortal();
    built.catch(() => undefined);
    const { serverUrl, rpcUrl, provider } = await startBenchStack(cleanups);
    const anchor = await deployAuditAnchor(
      new Wallet(HARDHAT_DEV_PRIVATE_KEYS[0], provider),
      new Wallet(HARDHAT_DEV_PRIVATE_KEYS[0]).address,
      new Wallet(HARDHAT_DEV_PRIVATE_KEYS[1]).address,
    );

    const url = await createDatabase(serverUrl, 'bench_portal_receipt');
    const dataSource = await openDatabase({ url, entities: API_ENTITIES, migrations: API_MIGRATIONS });
    cleanups.push(async () => dataSource.destroy());
    const ledger = new Ledger(dataSource);
    const portalDir = await built;
    cleanups.push(async () => rmSync(portalDir, { recursive: true, force: true }));
    const app = await createApp({
      keyStore: await sharedTestKeyStore(),
      config: loadConfig({ DATABASE_URL: url, ANCHORING: 'off', PORTAL_DIR: portalDir, PORTAL_RPC_URL: rpcUrl }),
      dataSource,
      ledger,
    });
    await app.listen(0, '127.0.0.1');
    cleanups.push(() => app.close());
    const api = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;

    // A receipt with both parts: the commitment learned, and its forgetting requested; everything anchored.
    const ml = (await new ApiKeyService(dataSource).create('ml')).key;
    const post = async (path: string, body: unknown) => {
      const res = await fetch(api + path, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${ml}` },
        body: JSON.stringify(body),
      });
      if (!res.ok) throw new Error(`POST ${path}: ${res.status} ${await res.text()}`);
      return res.json() as Promise<Record<string, any>>;
    };
    const samples = loadIris();
    const dataset = await post('/v1/datasets', { name: 'iris', features: 4, classes: 3 });
    const upload = await post(`/v1/datasets/${dataset.id}/samples`, samples);
    const commitment: string = upload.commitments[7].commitment;
    await post('/v1/forget-requests', { datasetId: dataset.id, externalIds: [samples[7].externalId], reason: 'bench' });
    const key = HARDHAT_DEV_PRIVATE_KEYS[1];
    const chainConfig = loadConfig({ RPC_URL: rpcUrl, CONTRACT_ADDRESS: anchor.address, ANCHORER_PRIVATE_KEY: key }).chain;
    const loop = new AnchoringLoop(dataSource, ledger, remoteChainConnector(chainConfig, { ANCHORER_PRIVATE_KEY: key }), {
      everyEntries: 1,
      everySeconds: 3600,
      confirmations: 1,
      replaceAfterSeconds: 3600,
      pollMs: 50,
    });
    await loop.tick();
    await loop.tick();
    await loop.stop();

    // Node: the same verification, the same number of runs (one warm-up first, as in the browser).
    const options = { apiUrl: api, rpcUrl, commitment };
    const first = await verifyReceipt(options);
    if (!first.ok) throw new Error(`the receipt does not verify in Node: ${JSON.stringify(first.failures)}`);
    const nodeMs: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      await verifyReceipt(options);
      nodeMs.push(performance.now() - t0);
    }

    const browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS });
    cleanups.push(() => browser.close());
    const page = await browser.newPage();
    await page.goto(`${api}/portal/receipt`);
    await page.waitForSelector('body[data-loaded=true]', { timeout: 60_000 });
    await page.fill('[data-testid=receipt-input]', commitment);
    const browserMs: number[] = [];
    const requests = { rpc: 0, service: 0 };
    page.on('request', (r) => {
      const origin = new URL(r.url()).origin;
      if (origin === new URL(rpcUrl).origin) requests.rpc++;
      else if (origin === api) requests.service++;
    });
    for (let i = 0; i <= runs; i++) {
      if (i === 1) Object.assign(requests, { rpc: 0, service: 0 });
      await page.click('[data-testid=receipt-verify]');
      await page.waitForSelector('[data-testid=receipt-verify]:not([disabled])', { timeout: 30_000 });
      if ((await page.getAttribute('[data-testid=receipt-result]', 'data-ok')) !== 'true') {
        throw new Error(`the receipt does not verify in Chromium: ${await page.textContent('[data-testid=receipt-output]')}`);
      }
      const text = (await page.textContent('[data-testid=receipt-ms]')) ?? '';
      const ms = Number(/verified in ([0-9.]+) ms/.exec(text)?.[1]);
      if (i > 0) browserMs.push(ms); // run 0 warms up (JIT, connections)
    }

    const row = (where: string, ms: number[], perRun: string) => [
      where,
      String(ms.length),
      median(ms).toFixed(1),
      percentile(ms, 95).toFixed(1),
      Math.max(...ms).toFixed(1),
      perRun,
    ];
    printTable(
      `verifyReceipt of a real receipt (learned + forget request, ${first.learned?.count} commitments in its batch), service and Hardhat on 127.0.0.1; target: <= 100 ms in the browser`,
      ['where', 'runs', 'median ms', 'p95 ms', 'max ms', 'requests per run (JSON-RPC + service)'],
      [
        row(
          `Chromium ${(await browser.version()).split('.')[0]}, portal bundle`,
          browserMs,
          `${(requests.rpc / runs).toFixed(1)} + ${(requests.service / runs).toFixed(1)}`,
        ),
        row(`Node ${process.version}`, nodeMs, 'same calls'),
      ],
    );
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  }
}

export const bench: Bench<typeof flags> = { summary: 'a receipt verified in the portal in Chromium vs verifyReceipt in Node', flags, run };

if (require.main === module) runBenchFile('bench/portal-receipt.bench.ts', bench);
