import { DynamicModule, Module } from '@nestjs/common';
import { QueueName } from '@lib/contracts';
import { ConfigModule, GatewayConfig } from '@lib/config';
import { QueueModule } from '@lib/queue';
import { AdapterRegistry } from './adapter-registry';
import { CancelRegistry } from './cancel-registry';
import { InferenceProcessor } from './inference.processor';
import { WorkerHost } from './worker-host.service';
import { WORKER_QUEUES } from './worker.tokens';

@Module({})
export class WorkerModule {
  static forRoot(config: GatewayConfig, queues: QueueName[]): DynamicModule {
    return {
      module: WorkerModule,
      imports: [ConfigModule.forRoot(config), QueueModule.forWorker(config)],
      providers: [AdapterRegistry, CancelRegistry, InferenceProcessor, WorkerHost, { provide: WORKER_QUEUES, useValue: queues }],
    };
  }
}
