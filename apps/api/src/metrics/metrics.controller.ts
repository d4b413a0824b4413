import { Controller, Get, Res, UseGuards } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { GatewayMetrics } from '@lib/metrics';
import { Public } from '../common/public.decorator';
import { MetricsAccessGuard } from './metrics-access.guard';

@Controller('metrics')
export class MetricsController {
  constructor(private readonly metrics: GatewayMetrics) {}

  /** Prometheus' text format. @Public: MetricsAccessGuard decides (METRICS_PUBLIC, API or admin key). */
  @Public()
  @UseGuards(MetricsAccessGuard)
  @Get()
  async scrape(@Res({ passthrough: true }) reply: FastifyReply): Promise<string> {
    const text = await this.metrics.metrics();
    void reply.header('content-type', this.metrics.contentType);
    return text;
  }
}
