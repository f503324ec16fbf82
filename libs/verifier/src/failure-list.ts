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
