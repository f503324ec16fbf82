import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Roles } from '../auth/roles.decorator';
import { UuidParam } from '../auth/uuid-param';
import { JobResponseDto } from './job.dto';
import { JobService } from './job.service';

@ApiTags('jobs')
@Controller('v1/jobs')
export class JobController {
  constructor(private readonly jobService: JobService) {}

  @Get(':id')
  @Roles('ml', 'auditor')
  @ApiOperation({
    summary:
      'A training job (lethe.train) or an unlearning pass (lethe.unlearn, result {requestIds, modelVersions}): state (queued, running, completed, failed), progress, ETA, error or result',
  })
  @ApiOkResponse({ type: JobResponseDto })
  get(@UuidParam('id') id: string): Promise<JobResponseDto> {
    return this.jobService.get(id);
  }
}
