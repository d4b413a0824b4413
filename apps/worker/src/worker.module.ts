import { DynamicModule, Module } from '@nestjs/common';
import { QueueName } from '@lib/contracts';
import { ConfigModule, GatewayConfig } from '@lib/config';
import { QueueModule, REDIS } from '@lib/queue';
import { ProviderLimiter } from '@lib/ratelimit';
import { MetricsModule } from '@lib/metrics';
import type IORedis from 'ioredis';
import { AdapterRegistry } from './adapter-registry';
import { BatchCallbackProcessor } from './batch-callback.processor';
import { BatchCompactor } from './batch-compactor.service';
import { BatchFeeder } from './batch-feeder.service';
import { BatchFinalizer } from './batch-finalizer.service';
import { BatchQueues } from './batch-queues';
import { BatchRecorder } from './batch-recorder.service';
import { CancelRegistry } from './cancel-registry';
import { ChildJobQueues } from './child-job-queues';
import { EmbeddingRunner } from './embedding-runner';
import { InferenceProcessor } from './inference.processor';
import { LongMediaService } from './long-media.service';
import { RateGate } from './rate-gate';
import { SemanticCacheService } from './semantic-cache.service';
import { WorkerHost } from './worker-host.service';
import { WorkerHeartbeatService } from './worker-heartbeat.service';
import { WorkerMetricsService } from './worker-metrics.service';
import { WORKER_QUEUES } from './worker.tokens';

@Module({})
export class WorkerModule {
  static forRoot(config: GatewayConfig, queues: QueueName[]): DynamicModule {
    return {
      module: WorkerModule,
      imports: [ConfigModule.forRoot(config), QueueModule.forWorker(config), MetricsModule.forRoot('worker')],
      providers: [
        AdapterRegistry,
        CancelRegistry,
        InferenceProcessor,
        LongMediaService,
        EmbeddingRunner,
        ChildJobQueues,
        WorkerHost,
        RateGate,
        SemanticCacheService,
        WorkerMetricsService,
        WorkerHeartbeatService,
        BatchQueues,
        BatchFeeder,
        BatchFinalizer,
        BatchCompactor,
        BatchRecorder,
        BatchCallbackProcessor,
        { provide: WORKER_QUEUES, useValue: queues },
        {
          provide: ProviderLimiter,
          inject: [REDIS],
          // A lease outlives its crashed holder by the longest a call with its downloads may take.
          useFactory: (redis: IORedis) =>
            new ProviderLimiter(redis, config.queuePrefix, config.rateLimits, { leaseTtlMs: config.providerTimeoutMs + config.mediaDownloadTimeoutMs + 60_000 }),
        },
      ],
    };
  }
}
