import { ApiProperty } from '@nestjs/swagger';
import { IsIn, IsString, Matches, MaxLength, MinLength } from 'class-validator';
import { IsOptionalField } from '../common/optional-field';
import { ROLES, Role } from '../auth/role';
import { ApiKeyEntity } from './api-key.entity';

export class CreateApiKeyDto {
  @ApiProperty({ enum: ROLES })
  @IsIn(ROLES as unknown as string[], { message: `role must be one of ${ROLES.join(', ')}` })
  role!: Role;

  @ApiProperty({ required: false, maxLength: 200, description: 'who or what uses the key (default: "<role> key")' })
  @IsOptionalField()
  @IsString()
  @MinLength(1)
  @MaxLength(200)
  @Matches(/^[^\x00-\x1f\x7f]*$/, { message: 'name must not contain control characters' })
  name?: string;
}

export class CreatedApiKeyResponseDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ description: 'the key: shown this once, stored only as its SHA-256' }) key!: string;
  @ApiProperty({ enum: ROLES }) role!: Role;
  @ApiProperty() name!: string;
}

export class ApiKeyResponseDto {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ enum: ROLES }) role!: Role;
  @ApiProperty() createdAt!: string;
  @ApiProperty({ nullable: true, type: String }) revokedAt!: string | null;
}

export function toApiKeyResponse(entity: ApiKeyEntity): ApiKeyResponseDto {
  return {
    id: entity.id,
    name: entity.name,
    role: entity.role,
    createdAt: entity.createdAt.toISOString(),
    revokedAt: entity.revokedAt ? entity.revokedAt.toISOString() : null,
  };
}
