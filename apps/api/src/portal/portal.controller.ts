import { Controller, Get, Inject } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProperty, ApiTags } from '@nestjs/swagger';
import { ANCHORING_LOOP } from '../anchoring/anchors.service';
import type { AnchoringLoop } from '../anchoring/anchoring-loop';
import { AppConfig } from '../config/config';
import { APP_CONFIG } from '../config/config.provider';

export class PortalConfigResponseDto {
  @ApiProperty({ nullable: true, description: 'the chain JSON-RPC URL browsers should use (PORTAL_RPC_URL); never RPC_URL' }) rpcUrl!:
    | string
    | null;
  @ApiProperty({ nullable: true, description: 'AuditAnchor address in use, lowercase 0x hex' }) contract!: string | null;
  @ApiProperty({ nullable: true, example: '31337' }) chainId!: string | null;
}

/** Public: where the portal's browser-side checks should read the chain. Only suggestions: the portal lets auditors change both. */
@ApiTags('portal')
@Controller('v1/portal')
export class PortalController {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(ANCHORING_LOOP) private readonly loop: AnchoringLoop | null,
  ) {}

  @Get('config')
  @ApiOperation({ summary: "Public: the portal's suggested chain RPC URL, AuditAnchor address and chain id" })
  @ApiOkResponse({ type: PortalConfigResponseDto })
  getConfig(): PortalConfigResponseDto {
    const connection = this.loop?.getConnection();
    return {
      rpcUrl: this.config.portal.rpcUrl ?? null,
      contract: connection?.contract ?? this.config.chain.contractAddress?.toLowerCase() ?? null,
      chainId: connection?.chainId ?? null,
    };
  }
}
