import { DynamicModule, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { ConfigModule, GatewayConfig } from '@lib/config';
import { QueueModule } from '@lib/queue';
import { ApiKeyGuard } from './common/api-key.guard';
import { HealthController } from './health/health.controller';
import { InferenceController } from './inference/inference.controller';
import { InferenceService } from './inference/inference.service';
import { RequestNormalizer } from './inference/request-normalizer';
import { SyncWaiter } from './inference/sync-waiter.service';
import { JobsController } from './jobs/jobs.controller';
import { JobsService } from './jobs/jobs.service';

@Module({})
export class AppModule {
  static forRoot(config: GatewayConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [ConfigModule.forRoot(config), QueueModule.forProducer(config)],
      controllers: [InferenceController, JobsController, HealthController],
      providers: [InferenceService, RequestNormalizer, SyncWaiter, JobsService, { provide: APP_GUARD, useClass: ApiKeyGuard }],
    };
  }
}
