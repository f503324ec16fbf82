import { Inject, Injectable, Optional } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { Ledger } from '@lethe/ledger';

/** Something that reports on its own part of the service in /v1/health (the anchoring loop, workers). */
export interface HealthReporter {
  readonly name: string;
  /** `ok: false` makes the overall status "degraded"; details are shown as they are. */
  report(): { ok: boolean; [detail: string]: unknown };
}

export const HEALTH_REPORTERS = Symbol('HEALTH_REPORTERS');

export interface HealthResponse {
  status: 'ok' | 'degraded';
  database: { ok: boolean; error?: string };
  ledger?: { treeSize: number; rootHash: string };
  [component: string]: unknown;
}

@Injectable()
export class HealthService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly ledger: Ledger,
    @Optional() @Inject(HEALTH_REPORTERS) private readonly reporters: HealthReporter[] = [],
  ) {}

  async check(): Promise<HealthResponse> {
    const response: HealthResponse = { status: 'ok', database: { ok: true } };
    try {
      await this.dataSource.query('SELECT 1');
      response.ledger = await this.ledger.getCheckpoint();
    } catch (error) {
      response.status = 'degraded';
      response.database = { ok: false, error: 'the database does not answer' };
    }
    for (const reporter of this.reporters ?? []) {
      const report = reporter.report();
      response[reporter.name] = report;
      if (!report.ok) response.status = 'degraded';
    }
    return response;
  }
}
