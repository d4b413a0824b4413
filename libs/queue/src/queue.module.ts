import { DynamicModule, Global, Inject, Injectable, Module, OnApplicationShutdown, OnModuleInit, Provider } from '@nestjs/common';
import { BullModule, getQueueToken } from '@nestjs/bullmq';
import { ModuleRef } from '@nestjs/core';
import { Queue } from 'bullmq';
import { ALL_QUEUES, QueueName } from '@lib/contracts';
import { GatewayConfig } from '@lib/config';
import { BlobStore } from './blob-store';
import { RedisKeys } from './redis-keys';
import { createRedis, RedisClient } from './redis-connection';
import { coalesceWrites } from './write-together';
import { REDIS } from './queue.tokens';
import { gatewayQueueOptions } from './job-options';

/** Every provider queue by name, for code that picks the queue at run time. */
@Injectable()
export class QueueRegistry implements OnModuleInit {
  private readonly queues = new Map<QueueName, Queue>();

  constructor(private readonly moduleRef: ModuleRef) {}

  /** The queue providers are factories: they exist once the module has initialised. */
  onModuleInit(): void {
    for (const name of ALL_QUEUES) {
      this.queues.set(name, this.moduleRef.get<Queue>(getQueueToken(name), { strict: false }));
    }
  }

  get(name: QueueName): Queue {
    const queue = this.queues.get(name);
    if (!queue) throw new Error(`queue ${name} is not registered`);
    return queue;
  }
}

/** Closes the shared client after the queues that use it are closed. */
@Injectable()
class RedisCloser implements OnApplicationShutdown {
  constructor(@Inject(REDIS) private readonly redis: RedisClient) {}

  async onApplicationShutdown(): Promise<void> {
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }
}

function sharedProviders(config: GatewayConfig, redis: RedisClient, keys: RedisKeys): Provider[] {
  return [
    { provide: REDIS, useValue: redis },
    { provide: RedisKeys, useValue: keys },
    { provide: BlobStore, useValue: new BlobStore(redis, keys, config.jobRetentionSeconds) },
    RedisCloser,
  ];
}

function redisKeysOf(config: GatewayConfig): RedisKeys {
  return new RedisKeys(config.queuePrefix, config.redisClusterNodes !== undefined);
}

/**
 * Producer side of the queues for the API: one shared ioredis client for every queue, blob
 * and publish (ioredis pipelines commands, so one connection carries thousands of requests).
 */
@Global()
@Module({})
export class QueueModule {
  static forProducer(config: GatewayConfig): DynamicModule {
    const redis = createRedis(config, 'api');
    coalesceWrites(redis); // every request's Queue.add goes out on it
    const keys = redisKeysOf(config);
    return {
      module: QueueModule,
      imports: [
        BullModule.forRoot({ connection: redis, prefix: config.queuePrefix }),
        // Injected by QueueName (getQueueToken('openai')); BullMQ's own name may carry a hash tag.
        BullModule.registerQueueAsync(...ALL_QUEUES.map((name) => ({ name, useFactory: () => ({ name: keys.queueName(name), ...gatewayQueueOptions() }) }))),
      ],
      providers: [...sharedProviders(config, redis, keys), QueueRegistry],
      exports: [REDIS, RedisKeys, BlobStore, QueueRegistry, BullModule],
    };
  }

  /** Worker side: BullMQ Workers open their own connections; this one reads blobs and publishes. */
  static forWorker(config: GatewayConfig): DynamicModule {
    const redis = createRedis(config, 'worker', { maxRetriesPerRequest: null });
    coalesceWrites(redis); // every job's limiter settlement goes out on it
    return {
      module: QueueModule,
      providers: sharedProviders(config, redis, redisKeysOf(config)),
      exports: [REDIS, RedisKeys, BlobStore],
    };
  }
}
