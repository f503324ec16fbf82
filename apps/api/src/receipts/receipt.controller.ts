import { Controller, Get, Param } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { SampleReceiptResponseDto } from './receipt.dto';
import { ReceiptService } from './receipt.service';

@ApiTags('receipts')
@Controller('v1/receipts')
export class ReceiptController {
  constructor(private readonly receiptService: ReceiptService) {}

  @Get(':commitment')
  @ApiOperation({ summary: 'Public: where a sample commitment was committed and where its forgetting was requested, with proofs and anchors' })
  @ApiOkResponse({ type: SampleReceiptResponseDto })
  get(@Param('commitment') commitment: string): Promise<SampleReceiptResponseDto> {
    return this.receiptService.get(commitment);
  }
}
