import { Logger } from '@nestjs/common';
import type { FastifyInstance } from 'fastify';
import type { IncomingMessage } from 'node:http';
import { acceptRequestId, GatewayMetrics, REQUEST_ID_HEADER } from '@lib/metrics';

/** Probes and scrapes arrive every few seconds: their access lines are debug, not info. */
const QUIET_ROUTES = new Set(['/health', '/ready', '/metrics']);
/** The route label of requests that matched no route, so that random paths make no new series. */
const UNMATCHED = 'unmatched';

/** Fastify's `genReqId`: the client's x-request-id when acceptable, else a new UUID. */
export function requestIdOf(req: IncomingMessage): string {
  return acceptRequestId(req.headers[REQUEST_ID_HEADER]);
}

/**
 * Per request: echo the request id, count it in gateway_http_* by route pattern and status,
 * and write one access line (method, route, status, duration, request id). Nothing else of the
 * request is logged: no body, no headers (so no Authorization), no query string.
 */
export function registerRequestTelemetry(fastify: FastifyInstance, metrics: GatewayMetrics): void {
  const logger = new Logger('Http');
  fastify.addHook('onRequest', (req, reply, done) => {
    void reply.header(REQUEST_ID_HEADER, req.id);
    done();
  });
  fastify.addHook('onResponse', (req, reply, done) => {
    const route = req.routeOptions?.url ?? UNMATCHED;
    const seconds = reply.elapsedTime / 1000;
    metrics.httpRequest(req.method, route, reply.statusCode, seconds);
    const line = { msg: 'request', method: req.method, route, status: reply.statusCode, duration_ms: Math.round(reply.elapsedTime * 10) / 10, request_id: req.id };
    if (QUIET_ROUTES.has(route)) logger.debug(line);
    else logger.log(line);
    done();
  });
}
