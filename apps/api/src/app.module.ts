import { DynamicModule, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ConfigModule, GatewayConfig } from '@lib/config';
import { QueueModule, REDIS } from '@lib/queue';
import { ClientLimiter } from '@lib/ratelimit';
import { MetricsModule } from '@lib/metrics';
import type { Redis } from 'ioredis';
import { BacklogGate } from './limits/backlog-gate';
import { CLIENT_LIMITER, ClientRateLimitGuard } from './limits/client-rate-limit.guard';
import { IdempotencyService } from './limits/idempotency.service';
import { ApiKeyGuard } from './common/api-key.guard';
import { HealthController } from './health/health.controller';
import { ReadinessController } from './health/readiness.controller';
import { MetricsController } from './metrics/metrics.controller';
import { QueueStatsService } from './metrics/queue-stats.service';
import { WorkersController } from './workers/workers.controller';
import { WorkersService } from './workers/workers.service';
import { InferenceController } from './inference/inference.controller';
import { pluginCatalogProvider, PluginsController } from './inference/plugins.controller';
import { InferenceService } from './inference/inference.service';
import { RequestNormalizer } from './inference/request-normalizer';
import { SyncWaiter } from './inference/sync-waiter.service';
import { JobsController } from './jobs/jobs.controller';
import { JobsService } from './jobs/jobs.service';
import { BatchesController } from './batches/batches.controller';
import { BatchesService } from './batches/batches.service';
import { BatchLineValidator } from './batches/batch-line-validator';
import { BatchStore } from './batches/batch-store';

@Module({})
export class AppModule {
  static forRoot(config: GatewayConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [ConfigModule.forRoot(config), QueueModule.forProducer(config), MetricsModule.forRoot('api')],
      controllers: [InferenceController, PluginsController, JobsController, BatchesController, HealthController, ReadinessController, MetricsController, WorkersController],
      providers: [
        InferenceService,
        RequestNormalizer,
        pluginCatalogProvider(config),
        SyncWaiter,
        JobsService,
        BatchesService,
        BatchLineValidator,
        BatchStore,
        WorkersService,
        QueueStatsService,
        { provide: APP_GUARD, useClass: ApiKeyGuard },
        IdempotencyService,
        BacklogGate,
        ClientRateLimitGuard,
        {
          provide: CLIENT_LIMITER,
          inject: [REDIS],
          useFactory: (redis: Redis) =>
            config.apiRateLimitRpm > 0 ? new ClientLimiter(redis, config.queuePrefix, config.apiRateLimitRpm, config.apiRateLimitBurst) : null,
        },
      ],
    };
  }
}
