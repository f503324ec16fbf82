import { Body, Controller, Get, HttpCode, HttpStatus, Post, Query } from '@nestjs/common';
import { ApiAcceptedResponse, ApiOkResponse, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { CurrentPrincipal } from '../auth/authenticated-request';
import { Principal } from '../auth/role';
import { Roles } from '../auth/roles.decorator';
import { UuidParam } from '../auth/uuid-param';
import {
  CreateForgetRequestDto,
  CreatedForgetRequestResponseDto,
  ForgetRequestResponseDto,
  ForgetRequestSummaryDto,
} from './forget-request.dto';
import { ForgetLifecycleService } from './forget-lifecycle.service';
import { ForgetRequestService } from './forget-request.service';
import { ExtendForgetRequestDto, ForgetExtensionDto, ForgetRequestExtensions } from './forget-request-extension';

@ApiTags('forget-requests')
@Controller('v1/forget-requests')
export class ForgetRequestController {
  constructor(
    private readonly forgetRequestService: ForgetRequestService,
    private readonly lifecycle: ForgetLifecycleService,
    private readonly extensions: ForgetRequestExtensions,
  ) {}

  @Post()
  @Roles('ml')
  @HttpCode(HttpStatus.ACCEPTED)
  @ApiOperation({
    summary:
      'Requests forgetting samples (by externalIds or subjectId); FORGET_REQUESTED is durable before the 202. Asking again for samples already requested answers the earlier request',
  })
  @ApiAcceptedResponse({ type: CreatedForgetRequestResponseDto })
  create(@Body() body: CreateForgetRequestDto, @CurrentPrincipal() principal: Principal): Promise<CreatedForgetRequestResponseDto> {
    return this.forgetRequestService.create(body, principal);
  }

  @Get()
  @Roles('ml', 'auditor')
  @ApiOperation({ summary: 'Forget requests, oldest first, optionally of one dataset' })
  @ApiQuery({ name: 'datasetId', required: false, type: String })
  @ApiQuery({ name: 'start', required: false, type: Number })
  @ApiQuery({ name: 'limit', required: false, type: Number, description: '1..1000, default 100' })
  @ApiOkResponse({ type: [ForgetRequestSummaryDto] })
  list(@Query() query: Record<string, unknown>): Promise<ForgetRequestSummaryDto[]> {
    return this.forgetRequestService.list(query);
  }

  @Get(':id')
  @Roles('ml', 'auditor')
  @ApiOperation({
    summary:
      'A forget request: state, commitments, the receipt of its FORGET_REQUESTED entry, and its unlearning pass (jobId, progress; poll GET /v1/jobs/:id)',
  })
  @ApiOkResponse({ type: ForgetRequestResponseDto })
  get(@UuidParam('id') id: string): Promise<ForgetRequestResponseDto> {
    return this.forgetRequestService.get(id);
  }

  @Post(':id/restore')
  @Roles('ml')
  @HttpCode(HttpStatus.ACCEPTED)
  @ApiOperation({
    summary:
      "Undoes a suspended forget request: the dataset's next unlearning pass learns its samples again (state restoring, then restored, FORGET_RESTORED). 409 naming the state unless it is suspended",
  })
  @ApiAcceptedResponse({ type: CreatedForgetRequestResponseDto })
  restore(@UuidParam('id') id: string, @CurrentPrincipal() principal: Principal): Promise<CreatedForgetRequestResponseDto> {
    return this.lifecycle.restore(id, principal);
  }

  @Post(':id/shred')
  @Roles('ml')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({
    summary: "Ends a suspended forget request now: its samples' keys destroyed (state completed, FORGET_SHREDDED). 409 naming the state unless it is suspended",
  })
  @ApiOkResponse({ type: CreatedForgetRequestResponseDto })
  shred(@UuidParam('id') id: string): Promise<CreatedForgetRequestResponseDto> {
    return this.lifecycle.shred(id);
  }

  @Post(':id/extend')
  @Roles('ml')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({ summary: 'Files an extension notice for a request that cannot finish within the legal month (FORGET_EXTENDED: reason, new deadline); once per request' })
  @ApiOkResponse({ type: ForgetExtensionDto })
  extend(@UuidParam('id') id: string, @Body() body: ExtendForgetRequestDto): Promise<ForgetExtensionDto> {
    return this.extensions.extend(id, body);
  }
}
