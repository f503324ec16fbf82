// The migration that seals the noise seeds of DP-SGD and certified models: a database written while they sat in
// clear in models.engine_config and in model_versions.engine_state (config and manifest) is migrated, then checked
// row by row and byte by byte in the database's relation files; and a model stored by the service from now on
// never has them in clear.
import { openDatabase } from '@lethe/ledger';
import { API_ENTITIES, apiMigrations } from '../../apps/api/src/database/schema';
import { NoiseSeedVault, putNoiseSeeds } from '../../apps/api/src/models/noise-seeds';
import { TestDatabase, createTestDatabase } from '../support/database';
import { TestKeyStore, openTestKeyStore } from '../support/key-store';
import { Hit, Needle, relationDir, scanTree } from '../support/scan';

const DATASET = '7d3c0f5e-8a11-4c2b-9d6e-5f4a3b2c1d0e';
const DP_MODEL = '22222222-2222-4222-8222-222222222222';
const CERTIFIED_MODEL = '33333333-3333-4333-8333-333333333333';
const PLAIN_MODEL = '44444444-4444-4444-8444-444444444444';
// Seeds no other byte string in the database would spell.
const DP_SEED = '5eed0dp0'.replace(/p/g, 'a').repeat(8);
const CERTIFIED_SEED = 'c0ffee5eed'.repeat(6) + 'c0de';
const privacy = { epsilon: 1, delta: 1e-5, clipNorm: 1, accountant: 'rdp', sampleRate: 0.25, stepsPerEpoch: 4, noiseMultiplier: 1.1, noiseSeed: DP_SEED };
const certified = { epsilon: 1, delta: 1e-5, lambda: 1e-4, sigma: 1, noiseSeed: CERTIFIED_SEED };
const dpConfig = { method: 'full-retrain', model: 'mlp', seed: 's', numFeatures: 3, numClasses: 2, privacy };
const certifiedConfig = { method: 'certified', model: 'logistic-regression', seed: 's', numFeatures: 3, numClasses: 2, certified };
const plainConfig = { method: 'sisa', model: 'logistic-regression', seed: 's', numFeatures: 3, numClasses: 2 };

/** The migrations a database had before the seal (those stamped earlier; later ones, e.g. job_tasks, come after it). */
const SEAL_STAMP = 1764217400000;
const MIGRATIONS_BEFORE = apiMigrations().filter((m) => Number(/\d{13}$/.exec(m.name)?.[0]) < SEAL_STAMP);
const describeHits = (hits: Hit[]) => hits.map((h) => `${h.needle} in ${h.file} at ${h.offset}`);

describe('sealing the noise seeds of stored models', () => {
  let db: TestDatabase;
  let keys: TestKeyStore;

  beforeEach(async () => {
    db = await createTestDatabase('seal_seeds');
    keys = await openTestKeyStore();
  });

  afterEach(async () => {
    await db.drop();
    keys.remove();
  });

  /** The database as the version before this migration wrote it: seeds in clear in both tables. */
  async function writeOldDatabase(): Promise<void> {
    const old = await openDatabase({ url: db.url, entities: [], migrations: MIGRATIONS_BEFORE });
    try {
      await old.query(`INSERT INTO datasets (id, name, features, classes, ledger_index) VALUES ($1, 'd', 3, 2, 0)`, [DATASET]);
      let index = 10;
      for (const [id, config] of [
        [DP_MODEL, dpConfig],
        [CERTIFIED_MODEL, certifiedConfig],
        [PLAIN_MODEL, plainConfig],
      ] as const) {
        const jobId = id.replace(/^.{8}/, '11111111');
        await old.query(`INSERT INTO jobs (id, type, payload) VALUES ($1, 'train', '{}')`, [jobId]);
        await old.query(`INSERT INTO models (id, dataset_id, config, engine_config, job_id) VALUES ($1, $2, '{}', $3, $4)`, [id, DATASET, JSON.stringify(config), jobId]);
        for (const version of [1, 2]) {
          const state = { config, hyperparamsHash: 'ab'.repeat(32), shards: [], members: [0], manifest: { modelId: id, version, config } };
          await old.query(
            `INSERT INTO model_versions (model_id, version, onnx_sha256, manifest_hash, metrics, ledger_index, engine_state) VALUES ($1, $2, $3, $3, '{}', $4, $5)`,
            [id, version, 'cd'.repeat(32), index++, JSON.stringify(state)],
          );
        }
      }
      // Statistics hold column values too (most common values); autovacuum would gather them.
      await old.query('ANALYZE models, model_versions');
      await old.query('CHECKPOINT');
    } finally {
      await old.destroy();
    }
  }

  it('seals every seed under a key of its model, keeps every other setting, and leaves no seed in the relation files', async () => {
    await writeOldDatabase();
    const probe = await openDatabase({ url: db.url, entities: [], migrations: MIGRATIONS_BEFORE });
    const dir = await relationDir(probe);
    await probe.destroy();
    if (dir === undefined) {
      console.warn('skipped: the test PostgreSQL keeps its files on another machine (TEST_DATABASE_URL), where they cannot be scanned');
      return;
    }
    const needles: Needle[] = [
      { name: 'DP-SGD noise seed', bytes: Buffer.from(DP_SEED) },
      { name: 'certified noise seed', bytes: Buffer.from(CERTIFIED_SEED) },
    ];
    // Positive control: the scan finds both seeds in the files before the migration.
    const before = await scanTree(dir, needles);
    expect([...new Set(before.map((h) => h.needle))].sort()).toEqual(needles.map((n) => n.name).sort());

    const dataSource = await openDatabase({ url: db.url, entities: API_ENTITIES, migrations: apiMigrations(async () => keys.keyStore) });
    try {
      const vault = new NoiseSeedVault(dataSource, keys.keyStore);
      const models: { id: string; engine_config: Record<string, unknown>; noise_key_id: string | null; noise_seeds: Buffer | null }[] = await dataSource.query(
        `SELECT id, engine_config, noise_key_id, noise_seeds FROM models ORDER BY id`,
      );
      const byId = new Map(models.map((m) => [m.id, m]));
      // The JSON holds every setting but the seed; the seeds open from the sealed column to what was stored.
      const { noiseSeed: _dp, ...dpRest } = privacy;
      const { noiseSeed: _c, ...certifiedRest } = certified;
      expect(byId.get(DP_MODEL)!.engine_config).toEqual({ ...dpConfig, privacy: dpRest });
      expect(byId.get(CERTIFIED_MODEL)!.engine_config).toEqual({ ...certifiedConfig, certified: certifiedRest });
      expect(byId.get(PLAIN_MODEL)).toMatchObject({ engine_config: plainConfig, noise_key_id: null, noise_seeds: null });
      const open = (id: string) => vault.open({ id, noiseKeyId: byId.get(id)!.noise_key_id, noiseSeeds: byId.get(id)!.noise_seeds });
      expect(await open(DP_MODEL)).toEqual({ privacy: DP_SEED });
      expect(await open(CERTIFIED_MODEL)).toEqual({ certified: CERTIFIED_SEED });
      expect(putNoiseSeeds(byId.get(DP_MODEL)!.engine_config, await open(DP_MODEL))).toEqual(dpConfig);
      // A key per model; a sealed payload is bound to its model (another model's id does not open it).
      expect(byId.get(DP_MODEL)!.noise_key_id).not.toBe(byId.get(CERTIFIED_MODEL)!.noise_key_id);
      await expect(vault.open({ id: CERTIFIED_MODEL, noiseKeyId: byId.get(DP_MODEL)!.noise_key_id, noiseSeeds: byId.get(DP_MODEL)!.noise_seeds })).rejects.toThrow();
      // Every version's config and manifest lost the seed and kept the rest.
      const states: { model_id: string; engine_state: { config: unknown; manifest: { config: unknown } } }[] = await dataSource.query(
        `SELECT model_id, engine_state FROM model_versions ORDER BY model_id, version`,
      );
      for (const { model_id: id, engine_state: state } of states) {
        expect(state.config).toEqual(byId.get(id)!.engine_config);
        expect(state.manifest.config).toEqual(byId.get(id)!.engine_config);
      }

      // Not one byte of either seed is left in the relation files (tables, TOAST, indexes, statistics).
      await dataSource.query('CHECKPOINT');
      expect(describeHits(await scanTree(dir, needles))).toEqual([]);
    } finally {
      await dataSource.destroy();
    }
  });

  it('refuses to run without the key store, naming it, and changes nothing', async () => {
    await writeOldDatabase();
    await expect(openDatabase({ url: db.url, entities: API_ENTITIES, migrations: apiMigrations() })).rejects.toThrow(
      'sealing the noise seeds of 2 model(s) needs the key store',
    );
    const again = await openDatabase({ url: db.url, entities: [], migrations: MIGRATIONS_BEFORE });
    try {
      const [{ n }]: { n: number }[] = await again.query(`SELECT count(*)::int AS n FROM models WHERE engine_config->'privacy'->>'noiseSeed' = $1`, [DP_SEED]);
      expect(n).toBe(1);
      expect((await again.query(`SELECT count(*)::int AS n FROM pg_attribute WHERE attrelid = 'models'::regclass AND attname = 'noise_seeds' AND NOT attisdropped`))[0].n).toBe(0);
    } finally {
      await again.destroy();
    }
  });

  it('stores a new model with its seeds sealed: the JSON never holds them, and they open to what was drawn', async () => {
    const dataSource = await openDatabase({ url: db.url, entities: API_ENTITIES, migrations: apiMigrations(async () => keys.keyStore) });
    try {
      const vault = new NoiseSeedVault(dataSource, keys.keyStore);
      const sealed = await vault.seal(DP_MODEL, dpConfig);
      expect(JSON.stringify(sealed.engineConfig)).not.toContain(DP_SEED);
      expect(sealed.noiseSeeds!.includes(Buffer.from(DP_SEED))).toBe(false);
      expect(await vault.open({ id: DP_MODEL, noiseKeyId: sealed.noiseKeyId, noiseSeeds: sealed.noiseSeeds })).toEqual({ privacy: DP_SEED });
      expect(await vault.seal(PLAIN_MODEL, plainConfig)).toEqual({ engineConfig: plainConfig, noiseKeyId: null, noiseSeeds: null });
    } finally {
      await dataSource.destroy();
    }
  });
});
