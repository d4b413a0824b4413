import { ConfigError, loadConfig } from './load-config';

describe('loadConfig', () => {
  it('has documented defaults', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      port: 8000,
      host: '127.0.0.1',
      redisUrl: 'redis://127.0.0.1:6379',
      queuePrefix: 'gw',
      syncTimeoutMs: 60_000,
      jobAttempts: 4,
      workerQueues: undefined,
      mediaAllowPrivateUrls: false,
    });
    expect(c.workerConcurrency.openai).toBe(32);
  });

  it('binds everywhere only when API keys exist', () => {
    expect(loadConfig({ API_KEYS: 'a, b' })).toMatchObject({ host: '0.0.0.0', apiKeys: ['a', 'b'] });
  });

  it('reads per-queue concurrency over the default', () => {
    const c = loadConfig({ WORKER_CONCURRENCY: '8', WORKER_CONCURRENCY_OPENAI: '64', WORKER_QUEUES: 'openai, google' });
    expect(c.workerConcurrency).toMatchObject({ openai: 64, google: 8 });
    expect(c.workerQueues).toEqual(['openai', 'google']);
  });

  it('lists every problem at once, without secrets', () => {
    let error: ConfigError | undefined;
    try {
      loadConfig({ PORT: '-1', SYNC_TIMEOUT_MS: 'soon', MEDIA_ALLOW_PRIVATE_URLS: 'maybe', HOST: '0.0.0.0', REDIS_URL: 'http://u:hunter2@x', OPENAI_BASE_URL: 'ftp://x' });
    } catch (err) {
      error = err as ConfigError;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect(error!.problems).toHaveLength(6);
    expect(error!.message).toContain('PORT=-1 must be a whole number from 0 to 65535');
    expect(error!.message).toContain('MEDIA_ALLOW_PRIVATE_URLS=maybe must be true or false');
    expect(error!.message).not.toContain('hunter2');
  });
});
