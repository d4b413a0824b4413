import { freePort } from '../support/free-port';
import { loadConfig } from '@lib/config';
import { GatewayHarness } from '../support/gateway-harness';
import { composeDurationSeconds, composeValue, configEnvNames, isConfigEnvName, parseYamlFile } from './deploy-files';

/** docker-compose.yml checked offline: durable Redis, healthchecks that ask what the apps serve, env the gateway reads. */
const [{ doc: compose }] = parseYamlFile('docker-compose.yml');
const services: Record<string, any> = compose.services;
/** What a user must pass (`${VAR:?...}`), as the test's stand-ins. */
const REQUIRED = { API_KEYS: 'compose-test-key' };

function envOf(service: string): Record<string, string> {
  return Object.fromEntries(Object.entries<unknown>(services[service].environment ?? {}).map(([k, v]) => [k, composeValue(v, REQUIRED)]));
}

/** The URL a `node -e fetch(...)` healthcheck asks. */
function healthcheckUrl(service: string): URL {
  const test: string[] = services[service].healthcheck.test;
  const url = /fetch\('([^']+)'\)/.exec(test.join(' '))?.[1];
  if (!url) throw new Error(`${service}: healthcheck does not fetch a URL: ${test.join(' ')}`);
  return new URL(url);
}

describe('docker-compose.yml', () => {
  it('runs Redis with an append-only file and noeviction, so accepted jobs survive and are never evicted', () => {
    const command: string[] = services.redis.command;
    const flag = (name: string): string | undefined => command[command.indexOf(name) + 1];
    expect(command).toContain('--appendonly');
    expect(flag('--appendonly')).toBe('yes');
    expect(flag('--maxmemory-policy')).toBe('noeviction');
    expect(services.redis.volumes.some((v: string) => v.endsWith(':/data'))).toBe(true);
  });

  it('gives every service a healthcheck, and starts the gateway only once Redis is healthy', () => {
    expect(Object.keys(services).sort()).toEqual(['api', 'redis', 'worker']);
    for (const [name, service] of Object.entries(services)) {
      expect({ name, healthcheck: Array.isArray(service.healthcheck?.test) && service.healthcheck.test.length > 1 }).toEqual({ name, healthcheck: true });
    }
    expect(services.redis.healthcheck.test).toEqual(['CMD', 'redis-cli', 'ping']);
    for (const name of ['api', 'worker']) expect(services[name].depends_on.redis.condition).toBe('service_healthy');
  });

  it('sets only variables libs/config reads, and each gateway environment is one loadConfig accepts', () => {
    const known = configEnvNames();
    for (const name of ['api', 'worker']) {
      const env = envOf(name);
      expect(Object.keys(env).filter((k) => !isConfigEnvName(k, known))).toEqual([]);
      expect(() => loadConfig(env)).not.toThrow();
    }
    expect(loadConfig(envOf('api')).host).toBe('0.0.0.0');
  });

  it('health-checks the API on its PORT and the worker on its WORKER_METRICS_PORT', () => {
    expect(Number(healthcheckUrl('api').port)).toBe(loadConfig(envOf('api')).port);
    expect(Number(healthcheckUrl('worker').port)).toBe(loadConfig(envOf('worker')).workerMetricsPort);
  });

  it('stops a worker with more time than WORKER_SHUTDOWN_GRACE_MS, so jobs are handed back before SIGKILL', () => {
    const graceMs = loadConfig(envOf('worker')).workerShutdownGraceMs;
    expect(composeDurationSeconds(services.worker.stop_grace_period)).toBeGreaterThan(graceMs / 1000);
  });

  describe('healthcheck paths', () => {
    let gw: GatewayHarness;
    let metricsPort: number;

    beforeAll(async () => {
      metricsPort = await freePort();
      gw = new GatewayHarness({ OPENAI_API_KEY: 'sk-compose-test', OPENAI_BASE_URL: 'http://127.0.0.1:9/v1' });
      await gw.startApi();
      await gw.startWorker({ WORKER_QUEUES: 'openai', WORKER_METRICS_PORT: String(metricsPort), WORKER_METRICS_HOST: '127.0.0.1' });
    });
    afterAll(() => gw?.close());

    it('are served by the API and the worker (200 on a healthy gateway)', async () => {
      const api = await fetch(gw.url + healthcheckUrl('api').pathname);
      expect(api.status).toBe(200);
      const worker = await fetch(`http://127.0.0.1:${metricsPort}${healthcheckUrl('worker').pathname}`);
      expect(worker.status).toBe(200);
    });
  });
});
