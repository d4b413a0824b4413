import { ValidationPipe } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { RequestValidationError, toValidationItems } from '@lib/contracts';
import { GatewayConfig, logLevels } from '@lib/config';
import { AppModule } from './app.module';
import { HttpErrorFilter } from './common/http-error.filter';
import { registerJsonBodyParser } from './common/json-body.parser';

/** The API application, configured but not yet listening (tests listen on port 0). */
export async function createApiApp(config: GatewayConfig): Promise<NestFastifyApplication> {
  const adapter = new FastifyAdapter({ bodyLimit: config.maxBodyBytes });
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forRoot(config), adapter, {
    logger: logLevels(config.logLevel),
    bodyParser: false,
  });
  const fastify = app.getHttpAdapter().getInstance();
  registerJsonBodyParser(fastify, config.maxBodyBytes);
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
  app.enableShutdownHooks();
  return app;
}
