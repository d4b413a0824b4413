import { Controller, Get, Inject, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import type IORedis from 'ioredis';
import { REDIS } from '@lib/queue';
import { Public } from '../common/public.decorator';

@Controller('health')
export class HealthController {
  constructor(@Inject(REDIS) private readonly redis: IORedis) {}

  /** 200 when Redis answers a PING within a second, 503 otherwise. */
  @Public()
  @Get()
  async health(@Res({ passthrough: true }) reply: FastifyReply): Promise<{ status: string; redis: string }> {
    const up = await Promise.race([
      this.redis.ping().then(
        () => true,
        () => false,
      ),
      new Promise<boolean>((r) => setTimeout(() => r(false), 1000).unref()),
    ]);
    void reply.status(up ? 200 : 503);
    return { status: up ? 'ok' : 'unavailable', redis: up ? 'up' : 'down' };
  }
}
