import 'reflect-metadata';
import { loadConfigAndRedisOrExit } from '@lib/queue';
import { createWorkerApp, WorkerStartError } from './worker.factory';

async function bootstrap(): Promise<void> {
  const config = await loadConfigAndRedisOrExit('worker');
  try {
    await createWorkerApp(config);
  } catch (err) {
    if (err instanceof WorkerStartError) {
      process.stderr.write(`[worker] ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}

void bootstrap();
