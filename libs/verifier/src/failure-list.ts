import type { VerificationFailure } from './errors';

/** Failures in the order found, at most `max` kept (a deleted entry early in a big log breaks everything after it). */
export class FailureList {
  readonly items: VerificationFailure[] = [];
  omitted = 0;

  constructor(private readonly max: number) {}

  add(failure: VerificationFailure): void {
    if (this.items.length < this.max) this.items.push(failure);
    else this.omitted++;
  }

  get count(): number {
    return this.items.length + this.omitted;
  }
}

/** Adds a failure with its code, message and, when known, entry and anchor. */
export type Fail = (code: VerificationFailure['code'], message: string, index?: number, anchor?: number) => void;

/** A Fail that appends to `failures`. */
export function collector(failures: VerificationFailure[]): Fail {
  return (code, message, index, anchor) => {
    const failure: VerificationFailure = { code, message };
    if (index !== undefined) failure.index = index;
    if (anchor !== undefined) failure.anchor = anchor;
    failures.push(failure);
  };
}
