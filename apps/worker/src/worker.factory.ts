import { INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ALL_QUEUES, QueueName } from '@lib/contracts';
import { GatewayConfig } from '@lib/config';
import { createAppLogger } from '@lib/metrics';
import type { DestinationStream } from 'pino';
import { AdapterRegistry } from './adapter-registry';
import { WorkerModule } from './worker.module';

export class WorkerStartError extends Error {}

/**
 * Which queues to serve: WORKER_QUEUES if given (each must have a processor and a configured
 * provider, or the worker refuses to start), else every queue with a configured provider.
 */
export function chooseQueues(config: GatewayConfig): QueueName[] {
  const servable = AdapterRegistry.servableQueues(config);
  if (config.workerQueues) {
    const unservable = config.workerQueues.filter((q) => !servable.includes(q));
    if (unservable.length > 0) {
      throw new WorkerStartError(
        `WORKER_QUEUES names ${unservable.join(', ')}, which this worker cannot serve: no processor or no provider configuration ` +
          `(servable here: ${servable.join(', ') || 'none'}). Configure its provider or remove it from WORKER_QUEUES.`,
      );
    }
    return config.workerQueues;
  }
  if (servable.length === 0) {
    throw new WorkerStartError(
      `No provider is configured, so this worker has no queue to serve (queues: ${ALL_QUEUES.join(', ')}). Set OPENAI_API_KEY, ANTHROPIC_API_KEY or GOOGLE_CLOUD_PROJECT (or PLUGINS_DIR / E5_BASE_URL for the plugins queue).`,
    );
  }
  return servable;
}

/** The worker: an application context (no HTTP server) whose WorkerHost runs the queues. */
export async function createWorkerApp(config: GatewayConfig, options: { logDestination?: DestinationStream } = {}): Promise<INestApplicationContext> {
  const queues = chooseQueues(config);
  const app = await NestFactory.createApplicationContext(WorkerModule.forRoot(config, queues), {
    logger: createAppLogger(config, 'worker', options.logDestination),
  });
  app.enableShutdownHooks();
  return app;
}
