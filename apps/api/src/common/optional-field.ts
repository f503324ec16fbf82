import { ValidateIf } from 'class-validator';

/**
 * A field a request may leave out, validated like any other when present — `null` included. class-validator's
 * own `IsOptional` skips `null` as well as an absent field, so a `null` passed every check of its field and
 * reached the services as a given value (a forget request with `subjectId: null` was a 500). No field of the
 * API takes `null`: it is refused by the field's own checks, naming the field ("subjectId must be a string").
 */
export function IsOptionalField(): PropertyDecorator {
  return ValidateIf((_object: object, value: unknown) => value !== undefined);
}
