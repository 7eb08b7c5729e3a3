import { Controller, Get, Header, Headers, Res, UnauthorizedException } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { parseAuthorization, Secret } from '@app/common';
import { AppConfig } from '@app/config';
import { BridgeMetrics } from './bridge-metrics.service';

/** `GET /metrics`, Prometheus text format, behind `Authorization: Bearer $METRICS_TOKEN` (default: the admin token). */
@ApiTags('metrics')
@ApiBearerAuth()
@Controller('metrics')
export class MetricsController {
  private readonly token: Secret | undefined;

  constructor(
    private readonly metrics: BridgeMetrics,
    config: AppConfig,
  ) {
    const token = config.metricsToken;
    this.token = token === undefined ? undefined : new Secret(token);
  }

  @Get()
  @Header('cache-control', 'no-store')
  @ApiOperation({ summary: 'Prometheus metrics of this process' })
  async scrape(@Headers('authorization') authorization: string | undefined, @Res({ passthrough: true }) reply: FastifyReply): Promise<string> {
    const given = parseAuthorization(authorization);
    if (!this.token || !this.token.matches(given?.scheme === 'bearer' ? given.token : undefined)) {
      reply.header('www-authenticate', 'Bearer realm="metrics"');
      throw new UnauthorizedException(
        this.token
          ? 'missing or wrong metrics token (Authorization: Bearer $METRICS_TOKEN, or the admin token)'
          : 'this process has no METRICS_TOKEN (or ADMIN_TOKEN): set one to scrape it',
      );
    }
    const { contentType, body } = await this.metrics.exposition();
    reply.header('content-type', contentType);
    return body;
  }
}
