import { ApiProperty } from '@nestjs/swagger';
import { IsInt, IsNumber, IsPositive, IsString, Matches, Max, MaxLength, Min, MinLength } from 'class-validator';
import { IsOptionalField } from '../common/optional-field';
import { DatasetEntity } from './dataset.entity';

/**
 * Features per dataset, at most: the widest sample, written at full precision (25 bytes a feature), is a
 * 400 KB line, a tenth of the NDJSON line limit, and an upload chunk (UPLOAD_CHUNK_BYTES) holds at least
 * 30 of them. README (Limits) has the arithmetic.
 */
export const MAX_FEATURES = 16_384;
export const MAX_CLASSES = 100_000;
/** A hundred years. */
export const MAX_RETENTION_DAYS = 36_500;

export class CreateDatasetDto {
  @ApiProperty({ maxLength: 200, example: 'iris' })
  @IsString()
  @MinLength(1)
  @MaxLength(200)
  @Matches(/^[^\x00-\x1f\x7f]*$/, { message: 'name must not contain control characters' })
  name!: string;

  @ApiProperty({ description: `number of features of every sample, 1..${MAX_FEATURES}`, example: 4 })
  @IsInt()
  @Min(1)
  @Max(MAX_FEATURES)
  features!: number;

  @ApiProperty({ description: `number of classes; labels are 0..classes-1; 2..${MAX_CLASSES}`, example: 3 })
  @IsInt()
  @Min(2)
  @Max(MAX_CLASSES)
  classes!: number;

  @ApiProperty({
    required: false,
    description: `samples expire this many days after their upload (0 < retentionDays <= ${MAX_RETENTION_DAYS}); the retention sweep files forget requests for them (reason 'retention')`,
  })
  @IsOptionalField()
  @IsNumber({ allowNaN: false, allowInfinity: false }, { message: `retentionDays must be a number of days, 0 < retentionDays <= ${MAX_RETENTION_DAYS}` })
  @IsPositive({ message: `retentionDays must be a number of days, 0 < retentionDays <= ${MAX_RETENTION_DAYS}` })
  @Max(MAX_RETENTION_DAYS, { message: `retentionDays must be a number of days, 0 < retentionDays <= ${MAX_RETENTION_DAYS}` })
  retentionDays?: number;

  @ApiProperty({
    required: false,
    description: 'the column (0..features-1) holding a protected group id: every model version records per-group accuracy, demographic parity and equalized odds differences on its holdout, and POST /v1/models/:id/bias-scan ranks samples by their influence on the gap',
    example: 0,
  })
  @IsOptionalField()
  @IsInt({ message: 'protectedFeature must be an integer column index' })
  @Min(0, { message: 'protectedFeature must be a column index >= 0' })
  protectedFeature?: number;
}

export class CreatedDatasetResponseDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ description: 'index of its DATASET_REGISTERED entry' }) ledgerIndex!: number;
  @ApiProperty() leafHash!: string;
}

export class DatasetSampleCountsDto {
  @ApiProperty({ description: 'samples committed (SAMPLES_COMMITTED), forgotten ones included' }) committed!: number;
  @ApiProperty({ description: 'samples whose data and salt were destroyed' }) forgotten!: number;
}

export class DatasetResponseDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty() name!: string;
  @ApiProperty() features!: number;
  @ApiProperty() classes!: number;
  @ApiProperty({ type: Number, nullable: true, description: 'the column holding a protected group id, null when none was declared' }) protectedFeature!: number | null;
  @ApiProperty({ description: 'index of its DATASET_REGISTERED entry' }) ledgerIndex!: number;
  @ApiProperty({ required: false, description: 'days a sample is kept after its upload (absent: until forgotten)' }) retentionDays?: number;
  @ApiProperty() createdAt!: string;
  @ApiProperty({ type: DatasetSampleCountsDto }) samples!: DatasetSampleCountsDto;
}

export function toDatasetResponse(entity: DatasetEntity, samples: DatasetSampleCountsDto): DatasetResponseDto {
  return {
    id: entity.id,
    name: entity.name,
    features: entity.features,
    classes: entity.classes,
    protectedFeature: entity.protectedFeature ?? null,
    ledgerIndex: Number(entity.ledgerIndex),
    ...(entity.retentionDays !== null ? { retentionDays: entity.retentionDays } : {}),
    createdAt: entity.createdAt.toISOString(),
    samples,
  };
}
