import { MigrationInterface, QueryRunner } from 'typeorm';
import { KeyStoreProvider, scrubDroppedData } from '@lethe/ledger';
import { sealModelNoiseSeeds, takeNoiseSeeds, hasNoiseSeeds } from '../noise-seeds';

/** The JSON paths a noise seed was kept at in clear: the model's engine config, and each version's config and manifest. */
const CONFIG_SEEDS = `#- '{privacy,noiseSeed}' #- '{certified,noiseSeed}'`;
const STATE_SEEDS = `#- '{config,privacy,noiseSeed}' #- '{config,certified,noiseSeed}' #- '{manifest,config,privacy,noiseSeed}' #- '{manifest,config,certified,noiseSeed}'`;

/**
 * Seals the noise seeds of DP-SGD and certified models (noise-seeds.ts). Before: privacy.noiseSeed and
 * certified.noiseSeed in clear in models.engine_config and in every version's engine_state (config and manifest).
 * After: models.noise_seeds holds them sealed under a data key of the model's own (models.noise_key_id, in the key
 * store), and the JSON columns hold the settings without them. The rows change in one transaction; then, outside
 * it, ANALYZE (new statistics), VACUUM FULL of both tables and of pg_statistic and a CHECKPOINT let PostgreSQL drop the old row versions'
 * files (what is left: WAL segments written before, until recycled, and backups; see README, "What forgetting erases").
 */
export function sealNoiseSeedsMigration(keyStore?: KeyStoreProvider): new () => MigrationInterface {
  return class SealNoiseSeeds1764217400000 implements MigrationInterface {
    name = 'SealNoiseSeeds1764217400000';
    transaction = false;

    async up(q: QueryRunner): Promise<void> {
      const [{ made }]: { made: boolean }[] = await q.query(
        `SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'models'::regclass AND attname = 'noise_seeds' AND NOT attisdropped) AS made`,
      );
      let sealed = 0;
      await q.startTransaction();
      try {
        if (!made) await q.query(`ALTER TABLE models ADD COLUMN noise_key_id text, ADD COLUMN noise_seeds bytea`);
        const rows: { id: string; engine_config: Record<string, unknown> }[] = await q.query(
          `SELECT id, engine_config FROM models
            WHERE engine_config->'privacy' ? 'noiseSeed' OR engine_config->'certified' ? 'noiseSeed' ORDER BY id FOR UPDATE`,
        );
        const store = rows.length > 0 ? await keyStore?.() : undefined;
        if (rows.length > 0 && !store) throw new Error(`sealing the noise seeds of ${rows.length} model(s) needs the key store`);
        for (const row of rows) {
          const { seeds } = takeNoiseSeeds(row.engine_config);
          if (!hasNoiseSeeds(seeds)) continue;
          const { keyId, sealed: payload } = await sealModelNoiseSeeds(store!, row.id, seeds);
          await q.query(`UPDATE models SET engine_config = engine_config ${CONFIG_SEEDS}, noise_key_id = $2, noise_seeds = $3 WHERE id = $1`, [row.id, keyId, payload]);
          await q.query(`UPDATE model_versions SET engine_state = engine_state ${STATE_SEEDS} WHERE model_id = $1`, [row.id]);
          sealed++;
        }
        await q.commitTransaction();
      } catch (error) {
        await q.rollbackTransaction();
        throw error;
      }
      if (sealed > 0) {
        // The tables stay, and so would their statistics (most common values of the JSON columns, seeds included):
        // ANALYZE replaces them, then VACUUM FULL rewrites the tables and pg_statistic without the old rows.
        await q.query('ANALYZE models, model_versions');
        await scrubDroppedData(q, ['models', 'model_versions']);
      }
    }

    async down(): Promise<void> {
      throw new Error('noise seeds are not decrypted back into plaintext: restore a backup from before the migration instead');
    }
  };
}
