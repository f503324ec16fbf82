import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Client } from 'pg';
import { Ledger, openDatabase } from '@lethe/ledger';
import { TestDatabase, createTestDatabase } from '../support/database';
import { buildEvents } from '../support/factories';

const ROOT = join(__dirname, '..', '..');

function runCli(args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(process.execPath, ['-r', './scripts/register.js', 'apps/cli/src/main.ts', ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('npm run cli -- fsck', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase('fsck_cli');
    const dataSource = await openDatabase({ url: db.url });
    const ledger = new Ledger(dataSource);
    for (let i = 0; i < 5; i++) await ledger.append(buildEvents(i * 7, 7));
    await dataSource.destroy();
  });

  afterAll(() => db.drop());

  it('reports an honest log as ok and exits 0', () => {
    const { status, stdout } = runCli(['fsck', '--database-url', db.url]);
    expect(stdout).toMatch(/^ok: 35 entries, \d+ interior nodes, 5 checkpoints; root [0-9a-f]{64}\n$/);
    expect(status).toBe(0);
  });

  it('prints JSON with --json', () => {
    const { status, stdout } = runCli(['fsck', '--json'], { DATABASE_URL: db.url });
    expect(JSON.parse(stdout)).toMatchObject({ ok: true, entries: 35, checkpoints: 5 });
    expect(status).toBe(0);
  });

  it('names the first mismatch and its index, and exits 1', async () => {
    const client = new Client({ connectionString: db.url });
    await client.connect();
    await client.query(`SET session_replication_role = replica`);
    await client.query(`UPDATE ledger_entries SET event = replace(event, 'dataset 21', 'dataset 24') WHERE idx = 21`);
    await client.end();
    const { status, stdout } = runCli(['fsck', '--database-url', db.url]);
    expect(stdout).toContain('FAILED at index 21: LEAF_MISMATCH');
    expect(status).toBe(1);
  });

  it('says clearly when there is no database to check, without a stack trace', () => {
    const { status, stderr } = runCli(['fsck', '--data-dir', join(ROOT, 'no-such-dir')], { DATABASE_URL: '' });
    expect(stderr).toMatch(/^lethe-audit: no database: set DATABASE_URL/);
    expect(stderr).not.toContain('    at ');
    expect(status).toBe(2);
  });
});
