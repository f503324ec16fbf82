import { BadRequestException, Body, Controller, Get, HttpCode, HttpStatus, Param, ParseIntPipe, Post, Query, StreamableFile } from '@nestjs/common';
import { ApiAcceptedResponse, ApiOkResponse, ApiOperation, ApiProduces, ApiQuery, ApiTags } from '@nestjs/swagger';
import { CurrentPrincipal } from '../auth/authenticated-request';
import { Principal } from '../auth/role';
import { Roles } from '../auth/roles.decorator';
import { UuidParam } from '../auth/uuid-param';
import { CreateModelDto, CreatedModelResponseDto, ModelResponseDto, ModelSummaryDto, ModelVersionResponseDto, PredictDto, PredictionResponseDto } from './model.dto';
import { ModelService } from './model.service';
import { ReleaseResponseDto, RollbackDto, RollbackResponseDto } from './model-lifecycle.dto';
import { ModelLifecycleService } from './model-lifecycle.service';
import { BiasScanResponse, BiasScanService } from './bias-scan.service';

const VersionParam = () =>
  Param('version', new ParseIntPipe({ exceptionFactory: () => new BadRequestException('version must be a positive integer') }));

@ApiTags('models')
@Controller('v1/models')
export class ModelController {
  constructor(
    private readonly modelService: ModelService,
    private readonly lifecycle: ModelLifecycleService,
    private readonly biasScanService: BiasScanService,
  ) {}

  @Post(':id/bias-scan')
  @Roles('ml')
  @HttpCode(HttpStatus.ACCEPTED)
  @ApiOperation({
    summary:
      "Starts a bias scan of the model's served version (a job): the holdout's fairness figures by the dataset's protectedFeature and the training samples ranked by influence functions on the gap; read it at GET /v1/models/{id}/bias-scans/{jobId}",
  })
  startBiasScan(@UuidParam('id') id: string, @CurrentPrincipal() principal: Principal): Promise<{ jobId: string; modelId: string; modelVersion: number }> {
    return this.biasScanService.start(id, principal);
  }

  @Get(':id/bias-scans/:jobId')
  @Roles('ml')
  @ApiOperation({ summary: 'A bias scan: state, and once completed result.candidates [{externalId, influence}] (ML team only: externalIds are private)' })
  getBiasScan(@UuidParam('id') id: string, @UuidParam('jobId') jobId: string): Promise<BiasScanResponse> {
    return this.biasScanService.get(id, jobId);
  }

  @Post()
  @Roles('ml')
  @HttpCode(HttpStatus.ACCEPTED)
  @ApiOperation({ summary: 'Trains a model on a dataset in a worker (BATCH_LEARNED..., MODEL_PUBLISHED); follow the job at GET /v1/jobs/{jobId}' })
  @ApiAcceptedResponse({ type: CreatedModelResponseDto })
  create(@Body() body: CreateModelDto, @CurrentPrincipal() principal: Principal): Promise<CreatedModelResponseDto> {
    return this.modelService.create(body, principal);
  }

  @Get()
  @Roles('ml', 'auditor')
  @ApiOperation({ summary: 'Models, oldest first, optionally of one dataset' })
  @ApiQuery({ name: 'datasetId', required: false, type: String })
  @ApiQuery({ name: 'start', required: false, type: Number })
  @ApiQuery({ name: 'limit', required: false, type: Number, description: '1..1000, default 100' })
  @ApiOkResponse({ type: [ModelSummaryDto] })
  list(@Query() query: Record<string, unknown>): Promise<ModelSummaryDto[]> {
    return this.modelService.list(query);
  }

  @Get(':id')
  @Roles('ml', 'auditor')
  @ApiOperation({ summary: 'A model: configuration, state and its published versions' })
  @ApiOkResponse({ type: ModelResponseDto })
  get(@UuidParam('id') id: string): Promise<ModelResponseDto> {
    return this.modelService.get(id);
  }

  @Get(':id/versions/:version')
  @Roles('ml', 'auditor')
  @ApiOperation({ summary: 'A published version: ONNX SHA-256, metrics, ledger entries, forget requests it reflects' })
  @ApiOkResponse({ type: ModelVersionResponseDto })
  getVersion(@UuidParam('id') id: string, @VersionParam() version: number): Promise<ModelVersionResponseDto> {
    return this.modelService.getVersion(id, version);
  }

  @Get(':id/versions/:version/onnx')
  @Roles('ml', 'auditor')
  @ApiOperation({ summary: "A version's ONNX file (its SHA-256 is the one in MODEL_PUBLISHED)" })
  @ApiProduces('application/octet-stream')
  @ApiOkResponse({ description: 'the ONNX file' })
  async getOnnx(@UuidParam('id') id: string, @VersionParam() version: number): Promise<StreamableFile> {
    const { bytes, onnxSha256 } = await this.modelService.getOnnx(id, version);
    return new StreamableFile(bytes, {
      type: 'application/octet-stream',
      disposition: `attachment; filename="${id}-v${version}-${onnxSha256.slice(0, 12)}.onnx"`,
      length: bytes.length,
    });
  }

  @Post(':id/rollback')
  @Roles('ml')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({
    summary: 'Serves an earlier live version again (MODEL_ROLLED_BACK); 409 naming the forget requests when it learned data forgotten since (retired, or being forgotten)',
  })
  @ApiOkResponse({ type: RollbackResponseDto })
  rollback(@UuidParam('id') id: string, @Body() body: RollbackDto): Promise<RollbackResponseDto> {
    return this.lifecycle.rollback(id, body);
  }

  @Post(':id/versions/:version/release')
  @Roles('ml')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({ summary: 'Releases a version the catastrophic-forgetting guard held (VERSION_RELEASED): it is served without a version number from now on' })
  @ApiOkResponse({ type: ReleaseResponseDto })
  release(@UuidParam('id') id: string, @VersionParam() version: number): Promise<ReleaseResponseDto> {
    return this.lifecycle.release(id, version);
  }

  @Post(':id/predict')
  @Roles('ml')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({ summary: 'Predicts with a published version (the latest unless `version` is given), loaded only if its hash matches the log' })
  @ApiOkResponse({ type: PredictionResponseDto })
  predict(@UuidParam('id') id: string, @Body() body: PredictDto): Promise<PredictionResponseDto> {
    return this.modelService.predict(id, body);
  }

  @Post(':id/learn')
  @Roles('ml')
  @HttpCode(HttpStatus.ACCEPTED)
  @ApiOperation({
    summary:
      "Learns the samples uploaded since the model's latest version (the dataset's next pass: BATCH_LEARNED..., MODEL_PUBLISHED); follow the job at GET /v1/jobs/{jobId}. 409 naming the state unless the model is ready",
  })
  @ApiAcceptedResponse({ type: CreatedModelResponseDto })
  learn(@UuidParam('id') id: string, @CurrentPrincipal() principal: Principal): Promise<CreatedModelResponseDto> {
    return this.modelService.learn(id, principal);
  }
}
