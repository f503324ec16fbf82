import { Controller, Get, HttpStatus, Res } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { SkipThrottle } from '@nestjs/throttler';
import type { Response } from 'express';
import { HealthResponse, HealthService } from './health.service';

@ApiTags('health')
@Controller('v1/health')
// Never rate-limited: monitoring must see the service even when a client is throttled (RateLimitGuard).
@SkipThrottle()
export class HealthController {
  constructor(private readonly healthService: HealthService) {}

  @Get()
  @ApiOperation({ summary: 'Database, ledger and anchoring status; 503 when the database is down' })
  async check(@Res({ passthrough: true }) res: Response): Promise<HealthResponse> {
    const health = await this.healthService.check();
    if (!health.database.ok) res.status(HttpStatus.SERVICE_UNAVAILABLE);
    return health;
  }
}
