// The migration that drops noise seeds from shard tasks: job_tasks.input held a DP-SGD model's privacy.noiseSeed in
// clear before tasks were queued without it. A database written then is migrated, and checked row by row and byte by
// byte in its relation files (a scan that finds the seed before, the positive control, and nothing after).
import { openDatabase } from '@lethe/ledger';
import { API_ENTITIES, apiMigrations } from '../../apps/api/src/database/schema';
import { TestDatabase, createTestDatabase } from '../support/database';
import { Hit, Needle, relationDir, scanTree } from '../support/scan';

const JOB = '55555555-5555-4555-8555-555555555555';
const DP_MODEL = '66666666-6666-4666-8666-666666666666';
const PLAIN_MODEL = '77777777-7777-4777-8777-777777777777';
// A seed no other byte string in the database would spell.
const DP_SEED = 'feed5eed0b5c'.repeat(5) + 'abcd';
const privacy = { epsilon: 1, delta: 1e-5, clipNorm: 1, accountant: 'rdp', sampleRate: 0.25, stepsPerEpoch: 4, noiseMultiplier: 1.1, noiseSeed: DP_SEED };
const taskOf = (modelId: string, config: object) => ({ modelId, version: 1, config, hyperparamsHash: 'ab'.repeat(32), shard: 0, fromSlice: 0, kept: [], commitments: [['cd'.repeat(32)]] });
const dpConfig = { method: 'sisa', model: 'mlp', seed: 's', numFeatures: 3, numClasses: 2, shards: 2, slices: 1, privacy };
const plainConfig = { method: 'sisa', model: 'logistic-regression', seed: 's', numFeatures: 3, numClasses: 2, shards: 2, slices: 1 };

/** The migrations a database had before this one (those stamped earlier). */
const STAMP = 1764217800000;
const MIGRATIONS_BEFORE = apiMigrations().filter((m) => Number(/\d{13}$/.exec(m.name)?.[0]) < STAMP);
const describeHits = (hits: Hit[]) => hits.map((h) => `${h.needle} in ${h.file} at ${h.offset}`);

describe('dropping noise seeds from stored shard tasks', () => {
  let db: TestDatabase;

  beforeEach(async () => {
    db = await createTestDatabase('task_seeds');
  });

  afterEach(async () => {
    await db.drop();
  });

  it('drops the seed from every task input, keeps the other settings, and leaves no seed in the relation files', async () => {
    const old = await openDatabase({ url: db.url, entities: [], migrations: MIGRATIONS_BEFORE });
    const dir = await relationDir(old);
    try {
      await old.query(`INSERT INTO jobs (id, type, payload) VALUES ($1, 'train', '{}')`, [JOB]);
      for (const [modelId, config] of [
        [DP_MODEL, dpConfig],
        [PLAIN_MODEL, plainConfig],
      ] as const) {
        await old.query(`INSERT INTO job_tasks (id, job_id, model_id, version, shard, input_sha256, input) VALUES ($1, $2, $3, 1, 0, $4, $5)`, [
          modelId.replace(/^.{8}/, '88888888'),
          JOB,
          modelId,
          'ef'.repeat(32),
          JSON.stringify(taskOf(modelId, config)),
        ]);
      }
      await old.query('ANALYZE job_tasks');
      await old.query('CHECKPOINT');
    } finally {
      await old.destroy();
    }
    if (dir === undefined) {
      console.warn('skipped: the test PostgreSQL keeps its files on another machine (TEST_DATABASE_URL), where they cannot be scanned');
      return;
    }
    const needles: Needle[] = [{ name: 'DP-SGD noise seed', bytes: Buffer.from(DP_SEED) }];
    // Positive control: the scan finds the seed in the files before the migration.
    expect((await scanTree(dir, needles)).length).toBeGreaterThan(0);

    const dataSource = await openDatabase({ url: db.url, entities: API_ENTITIES, migrations: apiMigrations() });
    try {
      const rows: { model_id: string; input: { config: Record<string, unknown> } }[] = await dataSource.query(`SELECT model_id, input FROM job_tasks ORDER BY model_id`);
      const { noiseSeed: _, ...withoutSeed } = privacy;
      expect(rows.map((r) => [r.model_id, r.input])).toEqual([
        [DP_MODEL, taskOf(DP_MODEL, { ...dpConfig, privacy: withoutSeed })],
        [PLAIN_MODEL, taskOf(PLAIN_MODEL, plainConfig)],
      ]);
      // Not one byte of the seed is left in the relation files (table, TOAST, indexes, statistics).
      await dataSource.query('CHECKPOINT');
      expect(describeHits(await scanTree(dir, needles))).toEqual([]);
    } finally {
      await dataSource.destroy();
    }
  });
});
