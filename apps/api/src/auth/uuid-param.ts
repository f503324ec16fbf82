import { BadRequestException, Param, PipeTransform } from '@nestjs/common';
import { isUuid } from '../common/uuid';

/** A route parameter that must be a UUID: otherwise a 400 naming it (never a database error). */
export function UuidParam(name: string): ParameterDecorator {
  const pipe: PipeTransform<string, string> = {
    transform: (value) => {
      if (!isUuid(value)) throw new BadRequestException(`${name} must be a UUID`);
      return value;
    },
  };
  return Param(name, pipe);
}
