import { Column, Entity, PrimaryColumn } from 'typeorm';
import { bigintTransformer } from './bigint.transformer';

/** A signed-off state of the log: its root at a tree size, recorded by each append transaction. */
@Entity({ name: 'ledger_checkpoints' })
export class CheckpointEntity {
  @PrimaryColumn({ name: 'tree_size', type: 'bigint', transformer: bigintTransformer })
  treeSize!: number;

  @Column({ name: 'root_hash', type: 'bytea' })
  rootHash!: Buffer;

  @Column({ name: 'created_at', type: 'timestamptz', default: () => 'now()' })
  createdAt!: Date;
}

/** The single row that appenders lock: the current size, root and right frontier. */
@Entity({ name: 'ledger_head' })
export class LedgerHeadEntity {
  @PrimaryColumn({ type: 'smallint' })
  id!: number;

  @Column({ name: 'tree_size', type: 'bigint', transformer: bigintTransformer })
  treeSize!: number;

  @Column({ name: 'root_hash', type: 'bytea' })
  rootHash!: Buffer;

  @Column({ type: 'bytea', array: true })
  frontier!: Buffer[];
}
