import { Controller, Get, Inject, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { REDIS, RedisClient } from '@lib/queue';
import { Public } from '../common/public.decorator';
import { WorkersService } from '../workers/workers.service';

export interface ReadinessBody {
  status: 'ready' | 'not_ready';
  redis: 'up' | 'down';
  /** Live workers per queue whose provider is configured. */
  workers: Record<string, number>;
  queues_without_workers: string[];
  message?: string;
}

@Controller('ready')
export class ReadinessController {
  constructor(
    @Inject(REDIS) private readonly redis: RedisClient,
    private readonly workers: WorkersService,
  ) {}

  /**
   * 200 when Redis answers and every queue with a configured provider has a live worker (from
   * heartbeats); 503 naming what is missing. Liveness is GET /health.
   */
  @Public()
  @Get()
  async ready(@Res({ passthrough: true }) reply: FastifyReply): Promise<ReadinessBody> {
    const body = await this.check();
    void reply.status(body.status === 'ready' ? 200 : 503);
    return body;
  }

  private async check(): Promise<ReadinessBody> {
    const down: ReadinessBody = { status: 'not_ready', redis: 'down', workers: {}, queues_without_workers: [], message: 'Redis is not reachable' };
    const timeout = new Promise<undefined>((r) => setTimeout(() => r(undefined), 1000).unref());
    const readiness = await Promise.race([this.redis.ping().then(() => this.workers.readiness()), timeout]).catch(() => undefined);
    if (!readiness) return down;
    const body: ReadinessBody = { status: readiness.ready ? 'ready' : 'not_ready', redis: 'up', workers: readiness.workers, queues_without_workers: readiness.missing };
    if (!readiness.ready) {
      body.message = `No live worker serves ${readiness.missing.join(', ')}: start a worker (npm run start:worker) whose WORKER_QUEUES includes ${readiness.missing.length > 1 ? 'them' : 'it'}`;
    }
    return body;
  }
}
