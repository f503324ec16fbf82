import { ConflictException, Injectable, NotFoundException } from '@nestjs/common';
import { ApiProperty } from '@nestjs/swagger';
import { IsInt, IsString, Max, MaxLength, Min, MinLength } from 'class-validator';
import { IsOptionalField } from '../common/optional-field';
import { DataSource } from 'typeorm';
import { Ledger } from '@lethe/ledger';
import { ForgetRequestEntity } from './forget-request.entity';

/** The legal month (GDPR art. 12(3): one month from the request), in days. */
export const FORGET_DEADLINE_DAYS = 30;
/** How far an extension may move the deadline (art. 12(3): "by two further months"), in days; the default. */
export const MAX_EXTENSION_DAYS = 60;
export const MAX_EXTENSION_REASON_LENGTH = 1000;

export class ExtendForgetRequestDto {
  @ApiProperty({
    maxLength: MAX_EXTENSION_REASON_LENGTH,
    description: 'why the request cannot finish within the legal month (logged in FORGET_EXTENDED: write no personal data into it)',
  })
  @IsString({ message: 'reason must be a non-empty string' })
  @MinLength(1, { message: 'reason must be a non-empty string' })
  @MaxLength(MAX_EXTENSION_REASON_LENGTH, { message: `reason must be at most ${MAX_EXTENSION_REASON_LENGTH} characters` })
  reason!: string;

  @ApiProperty({ required: false, minimum: 1, maximum: MAX_EXTENSION_DAYS, default: MAX_EXTENSION_DAYS, description: 'days added to the legal month' })
  @IsOptionalField()
  @IsInt({ message: `days must be an integer in 1..${MAX_EXTENSION_DAYS}` })
  @Min(1, { message: `days must be an integer in 1..${MAX_EXTENSION_DAYS}` })
  @Max(MAX_EXTENSION_DAYS, { message: `days must be an integer in 1..${MAX_EXTENSION_DAYS}` })
  days?: number;
}

export class ForgetExtensionDto {
  @ApiProperty() reason!: string;
  @ApiProperty({ description: 'ISO 8601: the legal month from the request, plus the extension' }) newDeadline!: string;
  @ApiProperty({ description: 'the FORGET_EXTENDED entry' }) ledgerIndex!: number;
}

/** A request's extension as its summary shows it; undefined when it was not extended. */
export function toForgetExtension(entity: ForgetRequestEntity): ForgetExtensionDto | undefined {
  if (entity.extendedDeadline === null || entity.extendLedgerIndex === null) return undefined;
  return { reason: entity.extensionReason ?? '', newDeadline: entity.extendedDeadline.toISOString(), ledgerIndex: Number(entity.extendLedgerIndex) };
}

/**
 * Extensions of forget requests that cannot finish within the legal month (FORGET_EXTENDED): filed by the ML team
 * with its reason (art. 12(3) asks the controller to tell the subject why, so a person decides; the service does not
 * extend on its own). Once per request, and not for a completed one. The row is locked from the check to the update,
 * the entry appended in between: nothing is logged for a refused extension, and two at once log one.
 */
@Injectable()
export class ForgetRequestExtensions {
  constructor(
    private readonly dataSource: DataSource,
    private readonly ledger: Ledger,
  ) {}

  async extend(requestId: string, body: ExtendForgetRequestDto): Promise<ForgetExtensionDto> {
    return this.dataSource.transaction(async (manager) => {
      const row = await manager.getRepository(ForgetRequestEntity).findOne({ where: { id: requestId }, lock: { mode: 'pessimistic_write' } });
      if (!row || row.ledgerIndex === null) throw new NotFoundException(`no forget request with id ${requestId}`);
      if (row.state === 'completed') throw new ConflictException(`forget request ${requestId} is completed: there is nothing to extend`);
      if (row.extendLedgerIndex !== null)
        throw new ConflictException(`forget request ${requestId} was extended already (entry ${row.extendLedgerIndex}, to ${row.extendedDeadline!.toISOString()})`);
      const days = FORGET_DEADLINE_DAYS + (body.days ?? MAX_EXTENSION_DAYS);
      const newDeadline = new Date(row.createdAt.getTime() + days * 86_400_000).toISOString();
      const entry = await this.ledger.appendOne({ type: 'FORGET_EXTENDED', version: 1, requestId, reason: body.reason, newDeadline });
      await manager.query(
        `UPDATE forget_requests SET extended_deadline = $2, extension_reason = $3, extend_ledger_index = $4, updated_at = now() WHERE id = $1`,
        [requestId, newDeadline, body.reason, String(entry.index)],
      );
      return { reason: body.reason, newDeadline, ledgerIndex: entry.index };
    });
  }
}
