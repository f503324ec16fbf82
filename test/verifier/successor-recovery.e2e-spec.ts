// Finding 5 of issue 15, end to end: the anchorer key is stolen and a made-up extension of the log is
// anchored with it, which freezes the contract for the honest service. The operator recovers with a
// successor AuditAnchor (`npm run deploy -- --predecessor … --vouched-size … --vouched-root …`), switches
// CONTRACT_ADDRESS to it, and `lethe-audit verify-log` follows it back to the frozen contract, verifies the
// history and flags the recovery, listing the made-up anchor as disregarded; so does the portal.
import { INestApplication, Logger } from '@nestjs/common';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { Wallet } from 'ethers';
import { DataSource } from 'typeorm';
import { AnchorClient, AnchoringPolicy, HARDHAT_DEV_PRIVATE_KEYS, deployAuditAnchor } from '@lethe/chain';
import { Ledger, openDatabase } from '@lethe/ledger';
import { MerkleTree, fromHex, hashLeaf, toHex } from '@lethe/merkle';
import { LogClient, verifyLog, type VerifyLogReport } from '@lethe/verifier';
import { AnchoringLoop } from '../../apps/api/src/anchoring/anchoring-loop';
import { remoteChainConnector } from '../../apps/api/src/anchoring/chain-connection';
import { createApp } from '../../apps/api/src/app';
import { loadConfig } from '../../apps/api/src/config/config';
import { API_ENTITIES, API_MIGRATIONS } from '../../apps/api/src/database/schema';
import { expectChainError, startChainFixture, type ChainFixture } from '../contracts/support/chain-fixture';
import { CHROMIUM_ARGS, buildPortal, chromiumPath } from '../portal/support/portal-build';
import { TestDatabase, createTestDatabase } from '../support/database';
import { buildEvents } from '../support/factories';
import { runScript } from '../support/run-script';
import { runCli } from './support/run-cli';
import { sharedTestKeyStore } from '../support/key-store';

const POLICY: AnchoringPolicy = { everyEntries: 5, everySeconds: 3600, confirmations: 1, replaceAfterSeconds: 3600, pollMs: 50 };
const [ADMIN_KEY, STOLEN_KEY, NEW_KEY] = HARDHAT_DEV_PRIVATE_KEYS;
const CHROMIUM = chromiumPath();

describe('recovering from a stolen anchorer key with a successor AuditAnchor', () => {
  let chain: ChainFixture;
  let db: TestDatabase;
  let dataSource: DataSource;
  let ledger: Ledger;
  let service: INestApplication;
  let api: string;
  let portalDir: string | undefined;
  const dataDir = mkdtempSync(join(tmpdir(), 'lethe-recovery-'));
  const loops: AnchoringLoop[] = [];

  beforeAll(async () => {
    Logger.overrideLogger(false);
    const built = CHROMIUM ? buildPortal() : Promise.resolve(undefined);
    built.catch(() => undefined);
    chain = await startChainFixture();
    db = await createTestDatabase('recovery');
    dataSource = await openDatabase({ url: db.url, entities: API_ENTITIES, migrations: API_MIGRATIONS });
    ledger = new Ledger(dataSource);
    portalDir = await built;
    // The service as auditors reach it (anchoring runs in the loops below, on the same database).
    const config = loadConfig({ DATABASE_URL: db.url, ANCHORING: 'off', DATA_DIR: dataDir, PORTAL_DIR: portalDir ?? dataDir, PORTAL_RPC_URL: chain.node.rpcUrl });
    service = await createApp({ keyStore: await sharedTestKeyStore(), config, dataSource, ledger });
    await service.listen(0, '127.0.0.1');
    api = `http://127.0.0.1:${(service.getHttpServer().address() as AddressInfo).port}`;
  }, 300_000);

  afterAll(async () => {
    for (const loop of loops) await loop.stop();
    await service?.close();
    await dataSource?.destroy();
    await db?.drop();
    await chain?.stop();
    rmSync(dataDir, { recursive: true, force: true });
    if (portalDir) rmSync(portalDir, { recursive: true, force: true });
  });

  const rpc = () => chain.node.rpcUrl;
  const address = (key: string) => new Wallet(key).address;

  /** The service's anchoring loop on CONTRACT_ADDRESS `contract` with the anchorer key `key`. */
  function newLoop(contract: string, key: string): AnchoringLoop {
    const config = loadConfig({ RPC_URL: rpc(), CONTRACT_ADDRESS: contract, ANCHORER_PRIVATE_KEY: key });
    const loop = new AnchoringLoop(dataSource, ledger, remoteChainConnector(config.chain, { ANCHORER_PRIVATE_KEY: key }), POLICY);
    loops.push(loop);
    return loop;
  }

  /** Ticks until a pass changes neither the log nor the contract. */
  async function settle(loop: AnchoringLoop, client: AnchorClient): Promise<void> {
    let last = '';
    for (let i = 0; i < 30; i++) {
      await loop.tick();
      const now = `${(await ledger.getCheckpoint()).treeSize}/${await client.checkpointCount()}/${loop.report().pendingTreeSize}`;
      if (now === last) return;
      last = now;
    }
    throw new Error('the loop did not settle');
  }

  async function sizesOn(client: AnchorClient): Promise<number[]> {
    const count = await client.checkpointCount();
    return Promise.all(Array.from({ length: count }, async (_, n) => (await client.checkpoint(n)).treeSize));
  }

  /** `npm run deploy` as the operator runs it, the deployer being the admin; resolves with the address printed. */
  async function deploy(args: string[]): Promise<string> {
    const run = await runScript('scripts/deploy.ts', ['--rpc', rpc(), ...args], { ANCHORER_PRIVATE_KEY: ADMIN_KEY });
    if (run.code !== 0) throw new Error(`deploy exited ${run.code}: ${run.stderr}`);
    return run.stdout.trim();
  }

  /** A made-up extension of the first `size` entries of the log to `size + extra`, consistent with it. */
  async function madeUpExtension(size: number, extra: number): Promise<MerkleTree> {
    const entries = await new LogClient(api).getEntries(0, size);
    const madeUp = Array.from({ length: extra }, (_, i) => hashLeaf(Buffer.from(`made up ${size + i}`)));
    return MerkleTree.fromLeafHashes([...entries.map((e) => fromHex(e.leafHash)), ...madeUp]);
  }

  it('refuses to deploy with the anchorer as admin unless told to, and says why', async () => {
    const same = address(ADMIN_KEY);
    const refused = await runScript('scripts/deploy.ts', ['--rpc', rpc(), '--admin', same, '--anchorer', same], { ANCHORER_PRIVATE_KEY: ADMIN_KEY });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('refusing to make the anchorer the admin');
    expect(refused.stderr).toContain('--allow-anchorer-admin');
    expect(refused.stdout).toBe('');
    const allowed = await deploy(['--admin', same, '--anchorer', same, '--allow-anchorer-admin']);
    expect(await (await AnchorClient.connect(allowed, chain.provider)).isAnchorer(same)).toBe(true);
    const half = await runScript('scripts/deploy.ts', ['--rpc', rpc(), '--admin', same, '--anchorer', address(NEW_KEY), '--predecessor', allowed], {
      ANCHORER_PRIVATE_KEY: ADMIN_KEY,
    });
    expect(half.code).toBe(2);
    expect(half.stderr).toContain('--predecessor, --vouched-size and --vouched-root go together');
  });

  it('is frozen by a made-up extension anchored with the stolen key, recovers through a successor, and lethe-audit verify-log follows and flags it', async () => {
    const [admin, stolen, fresh] = [address(ADMIN_KEY), address(STOLEN_KEY), address(NEW_KEY)];
    // The operator deploys with an offline admin key and a service key that only anchors, at most 30 entries at a time.
    const first = await deploy(['--admin', admin, '--anchorer', stolen, '--max-jump', '30', '--admin-delay', '86400']);
    const thief = await AnchorClient.connect(first, new Wallet(STOLEN_KEY, chain.provider));
    const loop = newLoop(first, STOLEN_KEY);
    const start = (await ledger.getCheckpoint()).treeSize;
    await ledger.append(buildEvents(start, 7));
    await settle(loop, thief);
    await ledger.append(buildEvents(start + 7, 6));
    await settle(loop, thief);
    const honest = await sizesOn(thief);
    expect(honest).toEqual([start + 7, start + 14]);
    const vouched = honest[1];

    // The key is stolen: the thief anchors a consistent extension that the log never had, as far as one anchor may go.
    const fake = await madeUpExtension(vouched, 30);
    await thief.waitForAnchor(await thief.anchor(vouched, vouched + 30, fake.root(vouched + 30), fake.consistencyProof(vouched, vouched + 30)));
    await ledger.append(buildEvents(start + 13, 40)); // the log goes on, beyond the made-up size
    await loop.tick();
    expect(loop.report()).toMatchObject({ ok: false, state: 'inconsistent' });
    const { treeSize: logSize } = await ledger.getCheckpoint();
    const proof = (await ledger.getConsistencyProof(vouched + 30, logSize)).proof;
    await expectChainError(thief.anchor(vouched + 30, logSize, await ledger.getRoot(logSize), proof), 'INCONSISTENT_ROOT'); // no honest anchor fits
    const frozen = await runCli(['verify-log', '--api', api, '--rpc', rpc(), '--contract', first]);
    expect(frozen.code).toBe(1);
    expect(frozen.stdout).toContain('INCONSISTENT_WITH_CHAIN');

    // Recovery: the admin pauses the old contract, revokes the stolen key, and deploys a successor vouching for
    // the last checkpoint it trusts, with the root from its own log (not from the chain) and a new anchorer.
    const adminClient = await AnchorClient.connect(first, chain.admin);
    await adminClient.waitForTransaction(await adminClient.pause());
    await adminClient.waitForTransaction(await adminClient.revokeAnchorer(stolen));
    const ownRoot = (await ledger.getConsistencyProof(vouched, logSize)).fromRoot;
    const successor = await deploy(['--admin', admin, '--anchorer', fresh, '--predecessor', first, '--vouched-size', String(vouched), '--vouched-root', ownRoot]);

    // The service switches CONTRACT_ADDRESS to the successor and goes on from the vouched checkpoint.
    const recovered = newLoop(successor, NEW_KEY);
    const successorClient = await AnchorClient.connect(successor, chain.provider);
    await settle(recovered, successorClient);
    expect(recovered.report()).toMatchObject({
      ok: true,
      state: 'ok',
      contract: successor.toLowerCase(),
      predecessor: { contract: first.toLowerCase(), vouchedSize: vouched, vouchedRoot: ownRoot },
    });
    const resumed = await sizesOn(successorClient);
    expect(resumed[0]).toBe(vouched);
    expect(resumed.length).toBeGreaterThan(1);

    // The auditor's tool follows the successor back, verifies everything, and flags the recovery.
    const report: VerifyLogReport = await verifyLog({ apiUrl: api, rpcUrl: rpc() });
    expect(report.failures).toEqual([]);
    expect(report).toMatchObject({
      ok: true,
      contract: successor.toLowerCase(),
      contractSource: 'log',
      warnings: [{ code: 'RECOVERY', contract: first.toLowerCase(), successor: successor.toLowerCase(), vouchedSize: vouched, disregardedSizes: [vouched + 30] }],
      predecessors: [{ contract: first.toLowerCase(), vouchedSize: vouched, vouchedRoot: ownRoot, checked: 2 }],
    });
    expect(report.predecessors[0].disregarded).toEqual([expect.objectContaining({ number: 2, treeSize: vouched + 30, rootHash: toHex(fake.root(vouched + 30)) })]);
    expect(report.anchors).toMatchObject({ checked: resumed.length, loggedChecked: 2 + resumed.length - 1, loggedElsewhere: 0 });

    const text = await runCli(['verify-log', '--api', api, '--rpc', rpc()]);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^ok: /);
    expect(text.stdout).toContain(`WARNING RECOVERY: the history went through a recovery: AuditAnchor ${successor.toLowerCase()} succeeds ${first.toLowerCase()}`);
    expect(text.stdout).toContain(`from its checkpoint of size ${vouched}`);
    expect(text.stdout).toContain(`disregarded: checkpoint 2 on ${first.toLowerCase()}, size ${vouched + 30}, root ${toHex(fake.root(vouched + 30))}`);
    const json = await runCli(['verify-log', '--api', api, '--rpc', rpc(), '--json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: true, warnings: [{ code: 'RECOVERY', contract: first.toLowerCase(), vouchedSize: vouched }] });

    // The portal shows the recovery beside its verdict, and on the Anchors page.
    if (!CHROMIUM) {
      console.warn('test/verifier/successor-recovery: the portal part is skipped: no Chromium (apt-get install chromium, or set CHROMIUM_PATH)');
      return;
    }
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    try {
      const page = await browser.newPage();
      await page.goto(`${api}/portal/`);
      await page.waitForSelector('body[data-loaded=true]', { timeout: 30_000 });
      await page.click('nav a[data-page=anchors]');
      const banner = page.locator('[data-testid=recovery]');
      await banner.waitFor({ timeout: 10_000 });
      expect(await banner.getAttribute('data-predecessor')).toBe(first.toLowerCase());
      expect(await banner.getAttribute('data-vouched-size')).toBe(String(vouched));
      await page.click('nav a[data-page=verify]');
      await page.click('[data-testid=verify]');
      await page.waitForSelector('[data-testid=verify-result]', { timeout: 60_000 });
      expect(await page.getAttribute('[data-testid=verify-result]', 'data-ok')).toBe('true');
      const warning = page.locator('[data-testid=verify-warnings] li');
      expect(await warning.getAttribute('data-code')).toBe('RECOVERY');
      expect(await warning.getAttribute('data-contract')).toBe(first.toLowerCase());
      expect(await warning.getAttribute('data-disregarded')).toBe(String(vouched + 30));
      expect(await warning.innerText()).toContain(`checkpoint of size ${vouched}`);
    } finally {
      await browser.close();
    }
  });

  it('fails verification of a successor that vouches for a root that is not a state of the log', async () => {
    const start = (await ledger.getCheckpoint()).treeSize;
    await ledger.append(buildEvents(start, 5));
    const size = start + 5;
    const old = await deployAuditAnchor(chain.admin, chain.admin.address, chain.anchorer.address);
    const thief = await AnchorClient.connect(old.address, chain.anchorer);
    await thief.waitForAnchor(await thief.anchor(0, size, await ledger.getRoot(size), []));
    const fake = await madeUpExtension(size, 10);
    await thief.waitForAnchor(await thief.anchor(size, size + 10, fake.root(size + 10), fake.consistencyProof(size, size + 10)));
    // A successor that vouches for the made-up checkpoint (the old contract holds it, so the deployment passes).
    const lying = await deployAuditAnchor(chain.admin, chain.admin.address, chain.stranger.address, {
      vouched: { predecessor: old.address, treeSize: size + 10, rootHash: fake.root(size + 10) },
    });
    const report = await verifyLog({ apiUrl: api, rpcUrl: rpc(), contract: lying.address });
    expect(report.ok).toBe(false);
    expect(report.failures).toContainEqual(expect.objectContaining({ code: 'INCONSISTENT_WITH_CHAIN', anchor: 0 }));
    expect(report.warnings).toEqual([expect.objectContaining({ code: 'RECOVERY', contract: old.address.toLowerCase(), vouchedSize: size + 10, disregardedSizes: [] })]);
    const cli = await runCli(['verify-log', '--api', api, '--rpc', rpc(), '--contract', lying.address]);
    expect(cli.code).toBe(1);
    expect(cli.stdout).toContain('INCONSISTENT_WITH_CHAIN (anchor 0)');
    expect(cli.stdout).toContain('WARNING RECOVERY');
  });
});
