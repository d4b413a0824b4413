import { ValidationPipe } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { RequestValidationError, toValidationItems } from '@lib/contracts';
import { GatewayConfig } from '@lib/config';
import { createAppLogger, GatewayMetrics } from '@lib/metrics';
import type { DestinationStream } from 'pino';
import { AppModule } from './app.module';
import { HttpErrorFilter } from './common/http-error.filter';
import { registerJsonBodyParser } from './common/json-body.parser';
import { registerNdjsonBodyParser } from './batches/ndjson-body.parser';
import { registerRequestTelemetry, requestIdOf } from './common/request-telemetry';
import { setupAdminDashboard } from './admin/admin-dashboard.plugin';
import { setupOpenApi } from './openapi/openapi';

/**
 * The API application, configured but not yet listening (tests listen on port 0).
 * `logDestination`: where JSON log lines go instead of stdout (tests capture them).
 */
export async function createApiApp(config: GatewayConfig, options: { logDestination?: DestinationStream } = {}): Promise<NestFastifyApplication> {
  const adapter = new FastifyAdapter({ bodyLimit: config.maxBodyBytes, genReqId: requestIdOf });
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forRoot(config), adapter, {
    logger: createAppLogger(config, 'api', options.logDestination),
    bodyParser: false,
  });
  const fastify = app.getHttpAdapter().getInstance();
  registerJsonBodyParser(fastify, config.maxBodyBytes);
  registerNdjsonBodyParser(fastify);
  registerRequestTelemetry(fastify, app.get(GatewayMetrics));
  // latency_ms is measured from the moment the request arrives, before the body is read.
  fastify.addHook('onRequest', (req, _reply, done) => {
    (req as typeof req & { receivedAt: number }).receivedAt = Date.now();
    done();
  });
  app.useGlobalFilters(new HttpErrorFilter());
  app.useGlobalPipes(
    new ValidationPipe({
      whitelist: true,
      transform: false,
      validationError: { target: false, value: false },
      exceptionFactory: (errors) => new RequestValidationError(toValidationItems(errors)),
    }),
  );
  setupOpenApi(app);
  setupAdminDashboard(app, config);
  app.enableShutdownHooks();
  return app;
}
