import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { loadConfigAndRedisOrExit } from '@lib/queue';
import { createApiApp } from './api.factory';

async function bootstrap(): Promise<void> {
  const config = await loadConfigAndRedisOrExit('api');
  const app = await createApiApp(config);
  const logger = new Logger('Api');
  if (config.apiKeys.length === 0) {
    logger.warn(`API_KEYS is empty: requests are not authenticated, so the API binds to ${config.host} (loopback) only`);
  }
  await app.listen(config.port, config.host);
  logger.log(`listening on http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${config.port}`);
}

void bootstrap();
