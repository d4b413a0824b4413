import { GatewayMetrics } from './gateway-metrics';
import { startMetricsServer, stopMetricsServer } from './metrics-http-server';

describe('startMetricsServer', () => {
  it('serves /metrics and /health over HTTP, 404 elsewhere, and refuses a port in use', async () => {
    const metrics = new GatewayMetrics({ role: 'worker', defaultMetrics: false });
    metrics.upstreamError('openai', '503');
    const server = await startMetricsServer(metrics, 0, '127.0.0.1');
    const port = (server.address() as { port: number }).port;
    try {
      const res = await fetch(`http://127.0.0.1:${port}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain('text/plain');
      expect(await res.text()).toContain('gateway_upstream_errors_total{provider="openai",status="503"} 1');
      expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${port}/other`)).status).toBe(404);
      await expect(startMetricsServer(metrics, port, '127.0.0.1')).rejects.toThrow(/EADDRINUSE/);
    } finally {
      await stopMetricsServer(server);
    }
  });
});
