import { parsePromText, sampleValue } from '../../../test/support/prom-text';
import { GatewayMetrics } from './gateway-metrics';

const job = { queue: 'openai', provider: 'openai', model: 'gpt-4o-mini', task: 'chat' };

async function samples(metrics: GatewayMetrics) {
  return parsePromText(await metrics.metrics());
}

describe('GatewayMetrics', () => {
  it('counts HTTP requests and their latency by route and status', async () => {
    const m = new GatewayMetrics({ role: 'api', defaultMetrics: false });
    m.httpRequest('POST', '/v1/inference', 200, 0.02);
    m.httpRequest('POST', '/v1/inference', 200, 3);
    m.httpRequest('GET', 'unmatched', 404, 0.001);
    const s = await samples(m);
    expect(sampleValue(s, 'gateway_http_requests_total', { method: 'POST', route: '/v1/inference', status: '200' })).toBe(2);
    expect(sampleValue(s, 'gateway_http_requests_total', { route: 'unmatched', status: '404' })).toBe(1);
    expect(sampleValue(s, 'gateway_http_request_duration_seconds_bucket', { route: '/v1/inference', le: '0.025' })).toBe(1);
    expect(sampleValue(s, 'gateway_http_request_duration_seconds_sum', { route: '/v1/inference' })).toBeCloseTo(3.02);
  });

  it('records job outcomes, run time, queue wait and upstream errors with bounded model labels', async () => {
    const m = new GatewayMetrics({ role: 'worker', defaultMetrics: false, maxModelsPerProvider: 1 });
    m.jobWaited(job, 1500);
    m.jobEnded(job, 'completed', 250);
    m.jobEnded(job, 'retry', 100);
    m.jobEnded({ ...job, model: 'made-up-model' }, 'failed', 50);
    m.upstreamError('openai', '500');
    m.upstreamError('openai', '500');
    const s = await samples(m);
    expect(sampleValue(s, 'gateway_jobs_total', { model: 'gpt-4o-mini', outcome: 'completed' })).toBe(1);
    expect(sampleValue(s, 'gateway_jobs_total', { outcome: 'retry' })).toBe(1);
    expect(sampleValue(s, 'gateway_jobs_total', { model: 'other', outcome: 'failed' })).toBe(1);
    expect(sampleValue(s, 'gateway_job_duration_seconds_sum', { outcome: 'completed' })).toBeCloseTo(0.25);
    expect(sampleValue(s, 'gateway_job_queue_wait_seconds_sum', { task: 'chat' })).toBeCloseTo(1.5);
    expect(sampleValue(s, 'gateway_upstream_errors_total', { provider: 'openai', status: '500' })).toBe(2);
  });

  it('records rate-limit waits and pauses, and cache lookups', async () => {
    const m = new GatewayMetrics({ role: 'worker', defaultMetrics: false });
    m.rateLimitWait('openai', 'gpt-4o', 2000, 'rpm');
    m.rateLimitWait('openai', 'gpt-4o', 500, 'rpm');
    m.rateLimitPause('openai', 'gpt-4o', 3000);
    m.cacheLookup('exact', true);
    m.cacheLookup('exact', false);
    m.cacheLookup('exact', false);
    const s = await samples(m);
    expect(sampleValue(s, 'gateway_rate_limit_wait_seconds_count', { provider: 'openai', model: 'gpt-4o', reason: 'rpm' })).toBe(2);
    expect(sampleValue(s, 'gateway_rate_limit_wait_seconds_sum', { reason: 'rpm' })).toBeCloseTo(2.5);
    expect(sampleValue(s, 'gateway_rate_limit_pauses_total', { provider: 'openai' })).toBe(1);
    expect(sampleValue(s, 'gateway_rate_limit_paused_seconds_total', { provider: 'openai' })).toBe(3);
    expect(sampleValue(s, 'gateway_cache_lookups_total', { kind: 'exact', result: 'hit' })).toBe(1);
    expect(sampleValue(s, 'gateway_cache_lookups_total', { kind: 'exact', result: 'miss' })).toBe(2);
  });

  it('API: reads queue and worker gauges at scrape time through its cache; a failed read leaves no stale series', async () => {
    const m = new GatewayMetrics({ role: 'api', defaultMetrics: false });
    let reads = 0;
    let fail = false;
    m.setQueueSnapshotSource(async () => {
      reads++;
      if (fail) throw new Error('redis down');
      return { counts: { openai: { waiting: 3, failed: 1 } }, workers: { openai: 2, google: 0 } };
    }, 0);
    const s = await samples(m);
    expect(sampleValue(s, 'gateway_queue_jobs', { queue: 'openai', state: 'waiting' })).toBe(3);
    expect(sampleValue(s, 'gateway_queue_jobs', { queue: 'openai', state: 'failed' })).toBe(1);
    expect(sampleValue(s, 'gateway_workers', { queue: 'openai' })).toBe(2);
    expect(sampleValue(s, 'gateway_workers', { queue: 'google' })).toBe(0);
    expect(reads).toBeGreaterThanOrEqual(1);
    fail = true;
    const after = await samples(m);
    expect(sampleValue(after, 'gateway_queue_jobs', { queue: 'openai', state: 'waiting' })).toBeUndefined();
    expect(sampleValue(after, 'gateway_workers', { queue: 'openai' })).toBeUndefined();
    expect(sampleValue(await samples(m), 'gateway_metrics_collect_errors_total', { source: 'queues' })).toBeGreaterThanOrEqual(1);
  });

  it('worker: reports jobs in flight per queue, and its build info; default metrics carry the prefix', async () => {
    const m = new GatewayMetrics({ role: 'worker' });
    m.setInFlightSource(() => ({ openai: 4 }));
    const s = await samples(m);
    expect(sampleValue(s, 'gateway_worker_jobs_in_flight', { queue: 'openai' })).toBe(4);
    expect(sampleValue(s, 'gateway_build_info', { role: 'worker' })).toBe(1);
    expect(s.find((x) => x.name === 'gateway_build_info')!.labels.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(sampleValue(s, 'gateway_process_resident_memory_bytes')).toBeGreaterThan(0);
    // Each process has a registry of its own: nothing lands in prom-client's global one.
    expect(s.every((x) => x.name.startsWith('gateway_'))).toBe(true);
  });
});
