import { Inject, Injectable } from '@nestjs/common';
import { queueForProvider, QueueName } from '@lib/contracts';
import { GATEWAY_CONFIG, GatewayConfig } from '@lib/config';
import { WorkerDirectory, WorkerRecord } from '@lib/metrics';
import { configuredProviders } from '@lib/providers';

export interface Readiness {
  ready: boolean;
  /** Live workers per queue that needs one. */
  workers: Record<string, number>;
  /** Queues with a configured provider and no live worker. */
  missing: QueueName[];
}

/** The workers' heartbeats, as the API reads them (GET /v1/workers, GET /ready). */
@Injectable()
export class WorkersService {
  /** Queues this API accepts jobs for: those whose provider is configured here. */
  private readonly needed: QueueName[];

  constructor(
    @Inject(GATEWAY_CONFIG) config: GatewayConfig,
    private readonly directory: WorkerDirectory,
  ) {
    this.needed = configuredProviders(config).map(queueForProvider);
  }

  list(): Promise<WorkerRecord[]> {
    return this.directory.list();
  }

  async readiness(): Promise<Readiness> {
    const workers = WorkerDirectory.countByQueue(await this.directory.list(), this.needed);
    const missing = this.needed.filter((q) => workers[q] === 0);
    return { ready: missing.length === 0, workers: Object.fromEntries(this.needed.map((q) => [q, workers[q]])), missing };
  }
}
