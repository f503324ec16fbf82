import { Column, Entity, PrimaryColumn } from 'typeorm';
import { bigintTransformer } from './bigint.transformer';

/**
 * An interior node of the tree: the hash of a perfect subtree (level >= 1) covering leaves
 * [index << level, (index + 1) << level). Leaves (level 0) are the entries' leaf hashes. Stored once,
 * when complete, so a proof for any tree size is read, not recomputed.
 */
@Entity({ name: 'ledger_nodes' })
export class MerkleNodeEntity {
  @PrimaryColumn({ type: 'smallint' })
  level!: number;

  @PrimaryColumn({ name: 'idx', type: 'bigint', transformer: bigintTransformer })
  index!: number;

  @Column({ type: 'bytea' })
  hash!: Buffer;
}
