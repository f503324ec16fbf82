import { Body, Controller, Get, HttpCode, HttpStatus, Post, Query, Req, StreamableFile } from '@nestjs/common';
import { ApiBody, ApiConsumes, ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import type { Request } from 'express';
import { CurrentPrincipal } from '../auth/authenticated-request';
import { Principal } from '../auth/role';
import { Roles } from '../auth/roles.decorator';
import { UuidParam } from '../auth/uuid-param';
import { AcceptsNdjson } from '../common/json-body.interceptor';
import { NDJSON_TYPE } from '../common/media-types';
import { CreateDatasetDto, CreatedDatasetResponseDto, DatasetResponseDto } from './dataset.dto';
import { DatasetService } from './dataset.service';
import { DatasetVersionDto, DatasetVersionService } from './dataset-version.service';
import { CreateSampleDto, SampleUploadResponseDto } from './sample.dto';
import { SampleUploadService } from './sample-upload.service';

@ApiTags('datasets')
@Controller('v1/datasets')
export class DatasetController {
  constructor(
    private readonly datasetService: DatasetService,
    private readonly sampleUploadService: SampleUploadService,
    private readonly datasetVersionService: DatasetVersionService,
  ) {}

  @Post()
  @Roles('ml')
  @HttpCode(HttpStatus.CREATED)
  @ApiOperation({ summary: 'Registers a dataset (DATASET_REGISTERED in the log)' })
  @ApiCreatedResponse({ type: CreatedDatasetResponseDto })
  create(@Body() body: CreateDatasetDto, @CurrentPrincipal() principal: Principal): Promise<CreatedDatasetResponseDto> {
    return this.datasetService.create(body, principal);
  }

  @Get()
  @Roles('ml', 'auditor')
  @ApiOperation({ summary: 'Registered datasets, oldest first: metadata and sample counts, no sample data' })
  @ApiQuery({ name: 'start', required: false, type: Number })
  @ApiQuery({ name: 'limit', required: false, type: Number, description: '1..1000, default 100' })
  @ApiOkResponse({ type: [DatasetResponseDto] })
  list(@Query() query: Record<string, unknown>): Promise<DatasetResponseDto[]> {
    return this.datasetService.list(query);
  }

  @Get(':id')
  @Roles('ml', 'auditor')
  @ApiOperation({ summary: 'A dataset: metadata and sample counts, no sample data' })
  @ApiOkResponse({ type: DatasetResponseDto })
  get(@UuidParam('id') id: string): Promise<DatasetResponseDto> {
    return this.datasetService.get(id);
  }

  @Get(':id/versions')
  @Roles('ml', 'auditor')
  @ApiOperation({ summary: "A dataset's versions, oldest first: the Merkle root and count of its live samples after each change (DATASET_VERSIONED)" })
  @ApiOkResponse({ type: [DatasetVersionDto] })
  listVersions(@UuidParam('id') id: string): Promise<DatasetVersionDto[]> {
    return this.datasetVersionService.list(id);
  }

  @Post(':id/samples')
  @Roles('ml')
  @AcceptsNdjson()
  @HttpCode(HttpStatus.OK)
  @ApiOperation({
    summary: `Uploads samples: a JSON array (up to 1 MB) or an ${NDJSON_TYPE} stream of any size; bad lines are reported, good ones committed`,
  })
  @ApiConsumes('application/json', NDJSON_TYPE)
  @ApiBody({ type: [CreateSampleDto] })
  @ApiOkResponse({ type: SampleUploadResponseDto })
  uploadSamples(@UuidParam('id') id: string, @Req() request: Request): Promise<SampleUploadResponseDto | StreamableFile> {
    return this.sampleUploadService.upload(id, request);
  }
}
