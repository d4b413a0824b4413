import * as http from 'node:http';
import { GatewayMetrics } from './gateway-metrics';

/**
 * The worker's small HTTP endpoint (a worker has no other HTTP server): `GET /metrics` in
 * Prometheus' text format and `GET /health` (200 while the process runs). Resolves once
 * listening; rejects when the port cannot be bound (e.g. EADDRINUSE).
 */
export function startMetricsServer(metrics: GatewayMetrics, port: number, host: string): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/metrics') {
      metrics.metrics().then(
        (text) => res.writeHead(200, { 'content-type': metrics.contentType }).end(req.method === 'HEAD' ? undefined : text),
        () => res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics collection failed\n'),
      );
      return;
    }
    if (path === '/health') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: GET /metrics or /health\n');
  });
  // A scrape is one short request: idle keep-alive sockets must not hold a closing worker.
  server.keepAliveTimeout = 5_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

/** Stops listening and drops idle connections. */
export function stopMetricsServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
