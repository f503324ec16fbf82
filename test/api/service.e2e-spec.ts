import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { Ledger, openDatabase } from '@lethe/ledger';
import { findFreePort } from '@lethe/postgres';
import { TestDatabase, createTestDatabase } from '../support/database';
import { buildEvents } from '../support/factories';
import { probeUntil } from '../support/probe';
import { startServiceProcess } from '../support/service-process';

async function getJson(url: string): Promise<{ status: number; body: any }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.json() };
}

describe('the service process', () => {
  let db: TestDatabase;
  let dataDir: string;

  beforeEach(async () => {
    db = await createTestDatabase('service');
    dataDir = mkdtempSync(join(tmpdir(), 'lethe-service-'));
  });

  afterEach(async () => {
    await db.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('stops at once on a bad variable, naming it', async () => {
    const service = startServiceProcess({ PORT: 'abc', DATABASE_URL: db.url, DATA_DIR: dataDir });
    expect(await service.exited).toBe(2);
    expect(service.output()).toContain('bad configuration: PORT: must be an integer, got "abc"');
  });

  it('anchors on its local chain, and after a restart redeploys, says so and anchors the latest checkpoint again', async () => {
    const port = await findFreePort();
    const chainPort = await findFreePort();
    const env = {
      PORT: String(port),
      CHAIN_PORT: String(chainPort),
      DATABASE_URL: db.url,
      DATA_DIR: dataDir,
      ANCHOR_EVERY_ENTRIES: '3',
      ANCHOR_EVERY_SECONDS: '3600',
    };
    const api = `http://127.0.0.1:${port}`;
    const first = startServiceProcess(env);
    try {
      await probeUntil(async () => ((await getJson(`${api}/v1/health`)).body.anchoring?.state === 'ok' ? true : undefined), 'the service');
      const dataSource: DataSource = await openDatabase({ url: db.url, poolSize: 1 });
      await new Ledger(dataSource).append(buildEvents(0, 4));
      await dataSource.destroy();
      const anchor = await probeUntil(async () => {
        const res = await getJson(`${api}/v1/anchors/latest`);
        return res.status === 200 ? res.body : undefined;
      }, 'the first anchor');
      expect(anchor).toMatchObject({ chainId: '31337', treeSize: 4, confirmations: expect.any(Number) });
      const health = (await getJson(`${api}/v1/health`)).body;
      expect(health).toMatchObject({ status: 'ok', anchoring: { state: 'ok', anchoredTreeSize: 4 } });
      expect(first.output()).toContain('this chain is ephemeral');
    } finally {
      first.child.kill('SIGTERM');
      expect(await first.exited).toBe(0);
    }
    expect(first.output()).toContain('stopped');

    const second = startServiceProcess(env);
    try {
      // The new chain starts empty: the latest checkpoint (4 entries + the ANCHORED one) is anchored again.
      const anchors = await probeUntil(async () => {
        const res = await getJson(`${api}/v1/anchors`);
        return res.body.length === 2 ? res.body : undefined;
      }, 'the anchor on the new chain', 90_000);
      expect(anchors[1].treeSize).toBe(5);
      expect(anchors[1].contract).toBe(anchors[0].contract); // same deterministic address, but a new chain
      const latest = (await getJson(`${api}/v1/anchors/latest`)).body;
      expect(latest.treeSize).toBe(5);
      expect(anchors[0].confirmations).toBeNull(); // the first chain is gone
      expect(second.output()).toContain('anchored again');
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
    }
  });
});
