import type { ForgetRequestQueue } from '../../../apps/api/src/forget-requests/forget-request.queue';

type Request = Parameters<ForgetRequestQueue['enqueue']>[0];

/**
 * Holds accepted forget requests (durable and logged, as always) until released, then hands them to the
 * real queue: lets a test anchor a FORGET_REQUESTED entry, move the chain's clock, and only then unlearn.
 */
export class GatedForgetRequestQueue implements ForgetRequestQueue {
  private target: ForgetRequestQueue | null = null;
  private readonly held: Request[] = [];

  async enqueue(request: Request): Promise<void> {
    if (this.target) await this.target.enqueue(request);
    else this.held.push(request);
  }

  async release(target: ForgetRequestQueue): Promise<void> {
    this.target = target;
    for (const request of this.held.splice(0)) await target.enqueue(request);
  }
}
