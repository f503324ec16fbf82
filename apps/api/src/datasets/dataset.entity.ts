import { Column, Entity, PrimaryColumn } from 'typeorm';

@Entity({ name: 'datasets' })
export class DatasetEntity {
  @PrimaryColumn({ type: 'uuid' })
  id!: string;

  @Column({ type: 'text' })
  name!: string;

  @Column({ type: 'integer' })
  features!: number;

  @Column({ type: 'integer' })
  classes!: number;

  /** The column holding a protected group id (fairness figures, bias scans); null when none was declared. */
  @Column({ name: 'protected_feature', type: 'integer', nullable: true })
  protectedFeature!: number | null;

  /** The DATASET_REGISTERED entry; null until it is durable. */
  @Column({ name: 'ledger_index', type: 'bigint', nullable: true })
  ledgerIndex!: string | null;

  /** Samples expire this many days after their upload (or earlier, by their own expiresAt); null: kept until forgotten. */
  @Column({ name: 'retention_days', type: 'double precision', nullable: true })
  retentionDays!: number | null;

  /** Id of the API key that registered it. */
  @Column({ name: 'created_by', type: 'uuid', nullable: true })
  createdBy!: string | null;

  @Column({ name: 'created_at', type: 'timestamptz', default: () => 'now()' })
  createdAt!: Date;
}
