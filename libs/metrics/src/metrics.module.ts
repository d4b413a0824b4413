import { DynamicModule, Global, Module } from '@nestjs/common';
import { REDIS, RedisClient, RedisKeys } from '@lib/queue';
import { GatewayMetrics, MetricsRole } from './gateway-metrics';
import { WorkerDirectory } from './worker-directory';

/**
 * The process's GatewayMetrics (one registry per app) and the WorkerDirectory of heartbeats.
 * Needs QueueModule (REDIS, RedisKeys) imported next to it.
 */
@Global()
@Module({})
export class MetricsModule {
  static forRoot(role: MetricsRole): DynamicModule {
    return {
      module: MetricsModule,
      providers: [
        { provide: GatewayMetrics, useFactory: () => new GatewayMetrics({ role }) },
        { provide: WorkerDirectory, useFactory: (redis: RedisClient, keys: RedisKeys) => new WorkerDirectory(redis, keys), inject: [REDIS, RedisKeys] },
      ],
      exports: [GatewayMetrics, WorkerDirectory],
    };
  }
}
