import { Body, Controller, Delete, Get, HttpCode, HttpStatus, Post, Query } from '@nestjs/common';
import { ApiCreatedResponse, ApiNoContentResponse, ApiOkResponse, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { SecretInResponse } from '../auth/idempotency.service';
import { Roles } from '../auth/roles.decorator';
import { UuidParam } from '../auth/uuid-param';
import { ApiKeyResponseDto, CreateApiKeyDto, CreatedApiKeyResponseDto } from './api-key.dto';
import { ApiKeyService } from './api-key.service';

@ApiTags('keys')
@Controller('v1/keys')
@Roles('admin')
export class ApiKeyController {
  constructor(private readonly apiKeyService: ApiKeyService) {}

  @Post()
  @HttpCode(HttpStatus.CREATED)
  @SecretInResponse('key')
  @ApiOperation({ summary: 'Creates an API key; the key is in this answer only (a retry with the same Idempotency-Key is a 409)' })
  @ApiCreatedResponse({ type: CreatedApiKeyResponseDto })
  create(@Body() body: CreateApiKeyDto): Promise<CreatedApiKeyResponseDto> {
    return this.apiKeyService.create(body.role, body.name);
  }

  @Get()
  @ApiOperation({ summary: 'API keys (ids, names, roles; never the keys), oldest first' })
  @ApiQuery({ name: 'start', required: false, type: Number })
  @ApiQuery({ name: 'limit', required: false, type: Number, description: '1..1000, default 100' })
  @ApiOkResponse({ type: [ApiKeyResponseDto] })
  list(@Query() query: Record<string, unknown>): Promise<ApiKeyResponseDto[]> {
    return this.apiKeyService.list(query);
  }

  @Delete(':id')
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({ summary: 'Revokes an API key; it stops working at once' })
  @ApiNoContentResponse()
  revoke(@UuidParam('id') id: string): Promise<void> {
    return this.apiKeyService.revoke(id);
  }
}

