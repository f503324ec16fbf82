import { Controller, Get, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiQuery, ApiTags } from '@nestjs/swagger';
import { AnchorResponseDto } from './anchors.dto';
import { AnchorsService } from './anchors.service';

@ApiTags('anchors')
@Controller('v1/anchors')
export class AnchorsController {
  constructor(private readonly anchorsService: AnchorsService) {}

  @Get()
  @ApiOperation({ summary: 'Confirmed anchors, oldest first' })
  @ApiQuery({ name: 'start', required: false, type: Number })
  @ApiQuery({ name: 'limit', required: false, type: Number, description: '1..1000, default 100' })
  @ApiOkResponse({ type: [AnchorResponseDto] })
  list(@Query() query: Record<string, unknown>): Promise<AnchorResponseDto[]> {
    return this.anchorsService.list(query);
  }

  @Get('latest')
  @ApiOperation({ summary: 'The latest confirmed anchor on the chain in use; 404 when none' })
  @ApiOkResponse({ type: AnchorResponseDto })
  latest(): Promise<AnchorResponseDto> {
    return this.anchorsService.latest();
  }
}
