import { ApiProperty } from '@nestjs/swagger';
import { IsInt, Min, ValidateBy } from 'class-validator';
import { IsOptionalField } from '../common/optional-field';

/** The catastrophic-forgetting guard's limit when a model does not set one. */
export const DEFAULT_MAX_TEST_ACCURACY_DROP = 0.05;

export class GuardDto {
  @ApiProperty({
    required: false,
    minimum: 0,
    maximum: 1,
    default: DEFAULT_MAX_TEST_ACCURACY_DROP,
    description:
      'the largest fall of test accuracy (on the holdout, so evaluation.holdoutFraction > 0) a version made by unlearning, learning or a restore ' +
      'may show and still be served at once; a version that falls more is published held (UNLEARN_HELD, or LEARN_HELD against the version a ' +
      'learn or restore extends) and served only when asked for by number until released',
  })
  @IsOptionalField()
  @ValidateBy({
    name: 'isFraction',
    validator: {
      validate: (value: unknown) => typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= 1,
      defaultMessage: () => 'guard.maxTestAccuracyDrop must be a number in [0, 1]',
    },
  })
  maxTestAccuracyDrop?: number;
}

/** A model's guard: its limit, and whether the model set it (then it is checked before the version is served). */
export interface GuardSettings {
  maxTestAccuracyDrop: number;
  explicit: boolean;
}

/** The guard of a model's configuration as it was given (POST /v1/models); absent means the default, checked after publication. */
export function guardOf(config: Record<string, unknown>): GuardSettings {
  const given = config.guard as { maxTestAccuracyDrop?: number } | undefined;
  if (given === undefined || given === null) return { maxTestAccuracyDrop: DEFAULT_MAX_TEST_ACCURACY_DROP, explicit: false };
  return { maxTestAccuracyDrop: given.maxTestAccuracyDrop ?? DEFAULT_MAX_TEST_ACCURACY_DROP, explicit: true };
}

export class RollbackDto {
  @ApiProperty({ description: 'an earlier live version of the model, to be served again' })
  @IsInt({ message: 'version must be a positive integer' })
  @Min(1, { message: 'version must be a positive integer' })
  version!: number;
}

export class RollbackResponseDto {
  @ApiProperty() modelId!: string;
  @ApiProperty({ description: 'the version served before' }) fromVersion!: number;
  @ApiProperty({ description: 'the version served now' }) currentVersion!: number;
  @ApiProperty({ description: 'the MODEL_ROLLED_BACK entry' }) ledgerIndex!: number;
}

export class ReleaseResponseDto {
  @ApiProperty() modelId!: string;
  @ApiProperty() version!: number;
  @ApiProperty({ description: 'the VERSION_RELEASED entry' }) ledgerIndex!: number;
}
