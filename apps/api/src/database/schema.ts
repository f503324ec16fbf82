import { MigrationInterface } from 'typeorm';
import { AnchorRecordEntity } from '../anchoring/anchor-record.entity';
import { CreateAnchors1764216100000 } from '../anchoring/migrations/1764216100000-create-anchors';

/** The service's own tables (beside the ledger's, which @lethe/ledger brings). */
export const API_ENTITIES = [AnchorRecordEntity];
export const API_MIGRATIONS: (new () => MigrationInterface)[] = [CreateAnchors1764216100000];
