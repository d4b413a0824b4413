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

  it('reads REDIS_CLUSTER_NODES as host:port seeds, IPv6 in brackets', () => {
    expect(loadConfig({}).redisClusterNodes).toBeUndefined();
    const c = loadConfig({ REDIS_CLUSTER_NODES: 'redis-0.redis:6379, [::1]:7001,10.0.0.3:7002' });
    expect(c.redisClusterNodes).toEqual([
      { host: 'redis-0.redis', port: 6379 },
      { host: '::1', port: 7001 },
      { host: '10.0.0.3', port: 7002 },
    ]);
  });

  it('rejects cluster seeds without a port, a database other than 0, and braces in QUEUE_PREFIX', () => {
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: 'redis-0, redis-1:99999' })).toThrow(
      /REDIS_CLUSTER_NODES entry "redis-0" must be host:port[\s\S]*REDIS_CLUSTER_NODES entry "redis-1:99999"/,
    );
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: ' , ' })).toThrow('REDIS_CLUSTER_NODES lists no node');
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: 'r:6379', REDIS_URL: 'redis://r:6379/2' })).toThrow('database 0 only');
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: 'r:6379', QUEUE_PREFIX: '{gw}' })).toThrow('QUEUE_PREFIX={gw} has braces');
    expect(loadConfig({ QUEUE_PREFIX: '{gw}' }).queuePrefix).toBe('{gw}');
  });

  it('reads ADMIN_API_KEYS: off by default; long keys of their own, never echoed', () => {
    expect(loadConfig({}).adminApiKeys).toEqual([]);
    expect(loadConfig({ ADMIN_API_KEYS: ' admin-key-0123456789 , admin-key-abcdefghij ' }).adminApiKeys).toEqual([
      'admin-key-0123456789',
      'admin-key-abcdefghij',
    ]);
    expect(() => loadConfig({ ADMIN_API_KEYS: 'short-secret' })).toThrow('ADMIN_API_KEYS key #1 is 12 characters; use at least 16');
    expect(() => loadConfig({ API_KEYS: 'shared-key-0123456789', ADMIN_API_KEYS: 'admin-key-0123456789,shared-key-0123456789' })).toThrow(
      'ADMIN_API_KEYS key #2 is also in API_KEYS',
    );
    // The problem names the key by position: the message does not carry it.
    expect(() => loadConfig({ ADMIN_API_KEYS: 'short-secret' })).toThrow(expect.objectContaining({ message: expect.not.stringContaining('short-secret') }));
  });

  it('reads the operations settings: LOG_FORMAT, METRICS_PUBLIC, worker metrics port and heartbeat', () => {
    expect(loadConfig({})).toMatchObject({
      logFormat: 'json',
      metricsPublic: false,
      workerMetricsPort: 9464,
      workerMetricsHost: '0.0.0.0',
      workerHeartbeatIntervalMs: 5000,
    });
    expect(
      loadConfig({ LOG_FORMAT: 'Text', METRICS_PUBLIC: 'yes', WORKER_METRICS_PORT: '0', WORKER_METRICS_HOST: '127.0.0.1', WORKER_HEARTBEAT_INTERVAL_MS: '250' }),
    ).toMatchObject({ logFormat: 'text', metricsPublic: true, workerMetricsPort: 0, workerMetricsHost: '127.0.0.1', workerHeartbeatIntervalMs: 250 });
    expect(() => loadConfig({ LOG_FORMAT: 'pretty' })).toThrow('LOG_FORMAT=pretty must be "json"');
    expect(() => loadConfig({ METRICS_PUBLIC: 'sometimes' })).toThrow('METRICS_PUBLIC=sometimes must be true or false');
    expect(() => loadConfig({ WORKER_METRICS_PORT: '70000' })).toThrow('WORKER_METRICS_PORT=70000 must be a whole number from 0 to 65535');
    expect(() => loadConfig({ WORKER_HEARTBEAT_INTERVAL_MS: '10' })).toThrow('WORKER_HEARTBEAT_INTERVAL_MS=10 must be a whole number from 100');
  });

  it('reads the plugin settings: PLUGINS_DIR must be a folder; timeouts, concurrency and kill grace are bounded', () => {
    expect(loadConfig({})).toMatchObject({ pluginsDir: undefined, pluginTimeoutMs: 60_000, pluginConcurrency: 2, pluginKillGraceMs: 2_000 });
    expect(loadConfig({ PLUGINS_DIR: __dirname, PLUGIN_TIMEOUT_MS: '500', PLUGIN_CONCURRENCY: '8', PLUGIN_KILL_GRACE_MS: '0' })).toMatchObject({
      pluginsDir: __dirname,
      pluginTimeoutMs: 500,
      pluginConcurrency: 8,
      pluginKillGraceMs: 0,
    });
    expect(() => loadConfig({ PLUGINS_DIR: `${__dirname}/no-such-folder` })).toThrow('is not a folder; create it');
    expect(() => loadConfig({ PLUGINS_DIR: __filename })).toThrow('is not a folder');
    expect(() => loadConfig({ PLUGIN_TIMEOUT_MS: '50' })).toThrow('PLUGIN_TIMEOUT_MS=50 must be a whole number from 100');
    expect(() => loadConfig({ PLUGIN_CONCURRENCY: '0' })).toThrow('PLUGIN_CONCURRENCY=0 must be a whole number from 1 to 256');
    expect(() => loadConfig({ PLUGIN_KILL_GRACE_MS: '-1' })).toThrow('PLUGIN_KILL_GRACE_MS=-1 must be a whole number from 0');
  });

  it('reads the E5 server settings: E5_API follows the URL when auto, E5_MAX_BATCH is bounded, the key is never echoed', () => {
    expect(loadConfig({}).e5).toEqual({ baseUrl: undefined, api: 'tei', model: 'intfloat/multilingual-e5-large-instruct', maxBatch: 32, apiKey: undefined });
    expect(loadConfig({ E5_BASE_URL: 'http://tei:8080/' }).e5).toMatchObject({ baseUrl: 'http://tei:8080', api: 'tei' });
    expect(loadConfig({ E5_BASE_URL: 'http://vllm:8000/v1' }).e5).toMatchObject({ baseUrl: 'http://vllm:8000/v1', api: 'openai' });
    expect(loadConfig({ E5_BASE_URL: 'http://x/v1', E5_API: 'TEI', E5_MODEL: 'e5', E5_MAX_BATCH: '8', E5_API_KEY: 'k' }).e5).toEqual({
      baseUrl: 'http://x/v1',
      api: 'tei',
      model: 'e5',
      maxBatch: 8,
      apiKey: 'k',
    });
    expect(() => loadConfig({ E5_API: 'grpc' })).toThrow('E5_API=grpc must be "tei"');
    expect(() => loadConfig({ E5_MAX_BATCH: '0' })).toThrow('E5_MAX_BATCH=0 must be a whole number from 1 to 4096');
    expect(() => loadConfig({ E5_BASE_URL: 'ftp://u:s3cret@x' })).toThrow(expect.objectContaining({ message: expect.not.stringContaining('s3cret') }));
  });

  it('reads the limits: provider caps from the shipped file, client and backlog bounds from the environment', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ apiRateLimitRpm: 0, queueMaxBacklog: 100_000, idempotencyTtlSeconds: 86_400, rateLimitMaxRequeues: 20 });
    expect(c.rateLimits.providers.openai?.rpm).toBe(10_000);
    expect(loadConfig({ RATE_LIMITS_FILE: 'none' }).rateLimits).toEqual({ providers: {} });
    expect(loadConfig({ API_RATE_LIMIT_RPM: '600' })).toMatchObject({ apiRateLimitRpm: 600, apiRateLimitBurst: 600 });
    expect(loadConfig({ API_RATE_LIMIT_RPM: '600', API_RATE_LIMIT_BURST: '20' }).apiRateLimitBurst).toBe(20);
    expect(() => loadConfig({ IDEMPOTENCY_TTL_SECONDS: '7200', JOB_RETENTION_SECONDS: '3600' })).toThrow('IDEMPOTENCY_TTL_SECONDS=7200 is longer than JOB_RETENTION_SECONDS=3600');
    expect(() => loadConfig({ RATE_LIMITS_FILE: '/nonexistent/limits.yaml' })).toThrow('RATE_LIMITS_FILE=/nonexistent/limits.yaml cannot be read (ENOENT)');
    expect(() => loadConfig({ QUEUE_MAX_BACKLOG: '-1' })).toThrow('QUEUE_MAX_BACKLOG=-1 must be a whole number');
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
