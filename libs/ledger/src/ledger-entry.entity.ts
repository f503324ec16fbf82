import { Column, Entity, Index, PrimaryColumn } from 'typeorm';
import { bigintTransformer } from './bigint.transformer';

/** One leaf of the log: the canonical JSON of an event and its RFC 9162 leaf hash. Never updated or deleted. */
@Entity({ name: 'ledger_entries' })
@Index('ledger_entries_type_idx', ['type', 'index'])
export class LedgerEntryEntity {
  @PrimaryColumn({ name: 'idx', type: 'bigint', transformer: bigintTransformer })
  index!: number;

  @Column({ name: 'leaf_hash', type: 'bytea' })
  leafHash!: Buffer;

  @Column({ type: 'text' })
  type!: string;

  /** RFC 8785 canonical JSON, stored as text so that its bytes are exactly the leaf data. */
  @Column({ type: 'text' })
  event!: string;

  @Column({ name: 'created_at', type: 'timestamptz', default: () => 'now()' })
  createdAt!: Date;
}
