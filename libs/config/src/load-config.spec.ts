import * as os from 'node:os';
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

  it('reads the batch settings: retention, line cap, feed window, callback attempts and a signing secret of 16+ characters', () => {
    expect(loadConfig({})).toMatchObject({ batchRetentionSeconds: 86_400, batchMaxLines: 1_000_000, batchFeedWindow: 1_000, batchCallbackAttempts: 8, batchCallbackSecret: undefined });
    expect(loadConfig({ BATCH_RETENTION_SECONDS: '60', BATCH_MAX_LINES: '10', BATCH_FEED_WINDOW: '5', BATCH_CALLBACK_ATTEMPTS: '2' })).toMatchObject({
      batchRetentionSeconds: 60,
      batchMaxLines: 10,
      batchFeedWindow: 5,
      batchCallbackAttempts: 2,
    });
    expect(loadConfig({ BATCH_CALLBACK_SECRET: 'a-long-enough-secret' }).batchCallbackSecret).toBe('a-long-enough-secret');
    expect(loadConfig({}).batchResultsDir).toBeUndefined();
    expect(loadConfig({ BATCH_RESULTS_DIR: os.tmpdir() }).batchResultsDir).toBe(os.tmpdir());
    expect(() => loadConfig({ BATCH_RESULTS_DIR: '/nonexistent/batch-results' })).toThrow('BATCH_RESULTS_DIR=/nonexistent/batch-results is not a folder');
    expect(() => loadConfig({ BATCH_RETENTION_SECONDS: '0' })).toThrow('BATCH_RETENTION_SECONDS=0 must be a whole number from 1');
    expect(() => loadConfig({ BATCH_MAX_LINES: 'many' })).toThrow('BATCH_MAX_LINES=many must be a whole number');
    expect(() => loadConfig({ BATCH_FEED_WINDOW: '0' })).toThrow('BATCH_FEED_WINDOW=0 must be a whole number from 1');
    expect(() => loadConfig({ BATCH_CALLBACK_ATTEMPTS: '101' })).toThrow('BATCH_CALLBACK_ATTEMPTS=101 must be a whole number from 1 to 100');
    expect(() => loadConfig({ BATCH_CALLBACK_SECRET: 'short-s3cret' })).toThrow(
      expect.objectContaining({ message: expect.stringMatching(/BATCH_CALLBACK_SECRET is 12 characters; use at least 16(?![\s\S]*short-s3cret)/) }),
    );
  });

  it('reads the embedding throughput settings: cache TTL and bound, coalescing window, OpenAI call size', () => {
    expect(loadConfig({})).toMatchObject({ embeddingCacheTtlSeconds: 0, embeddingCacheMaxEntries: 100_000, coalesceWindowMs: 0, openaiEmbeddingMaxInputs: 2048, openaiEmbeddingMaxTokens: 300_000 });
    expect(loadConfig({ EMBEDDING_CACHE_TTL_SECONDS: '3600', EMBEDDING_CACHE_MAX_ENTRIES: '10', COALESCE_WINDOW_MS: '5', OPENAI_EMBEDDING_MAX_INPUTS: '100', OPENAI_EMBEDDING_MAX_TOKENS: '5000' })).toMatchObject({
      embeddingCacheTtlSeconds: 3600,
      embeddingCacheMaxEntries: 10,
      coalesceWindowMs: 5,
      openaiEmbeddingMaxInputs: 100,
      openaiEmbeddingMaxTokens: 5000,
    });
    expect(() => loadConfig({ EMBEDDING_CACHE_TTL_SECONDS: '-1' })).toThrow('EMBEDDING_CACHE_TTL_SECONDS=-1 must be a whole number');
    expect(() => loadConfig({ EMBEDDING_CACHE_MAX_ENTRIES: '0' })).toThrow('EMBEDDING_CACHE_MAX_ENTRIES=0 must be a whole number from 1');
    expect(() => loadConfig({ COALESCE_WINDOW_MS: '5000' })).toThrow('COALESCE_WINDOW_MS=5000 must be a whole number from 0 to 1000');
    expect(() => loadConfig({ OPENAI_EMBEDDING_MAX_INPUTS: '4096' })).toThrow('OPENAI_EMBEDDING_MAX_INPUTS=4096 must be a whole number from 1 to 2048');
    expect(() => loadConfig({ OPENAI_EMBEDDING_MAX_TOKENS: 'lots' })).toThrow('OPENAI_EMBEDDING_MAX_TOKENS=lots must be a whole number');
  });

  it('reads the long media settings: ffmpeg and ffprobe paths, chunk length and overlap within bounds', () => {
    expect(loadConfig({})).toMatchObject({ ffmpegPath: 'ffmpeg', ffprobePath: 'ffprobe', audioChunkSeconds: 600, audioChunkOverlapSeconds: 2 });
    expect(loadConfig({ FFMPEG_PATH: '/opt/ff/ffmpeg', FFPROBE_PATH: ' /opt/ff/ffprobe ', AUDIO_CHUNK_SECONDS: '300', AUDIO_CHUNK_OVERLAP_SECONDS: '0' })).toMatchObject({
      ffmpegPath: '/opt/ff/ffmpeg',
      ffprobePath: '/opt/ff/ffprobe',
      audioChunkSeconds: 300,
      audioChunkOverlapSeconds: 0,
    });
    expect(() => loadConfig({ AUDIO_CHUNK_SECONDS: '10' })).toThrow('AUDIO_CHUNK_SECONDS=10 must be a whole number from 30 to 3600');
    expect(() => loadConfig({ AUDIO_CHUNK_OVERLAP_SECONDS: '30' })).toThrow('AUDIO_CHUNK_OVERLAP_SECONDS=30 must be a whole number from 0 to 10');
  });

  it('reads the semantic cache settings: the embedder as provider:model, the default delta in [0, 1], TTL, size and embed timeout', () => {
    expect(loadConfig({}).semanticCache).toEqual({ embedder: undefined, judge: undefined, defaultDelta: 0.02, ttlSeconds: 86_400, maxEntries: 100_000, embedTimeoutMs: 3_000 });
    expect(loadConfig({ SEMANTIC_CACHE_JUDGE: 'exact' }).semanticCache.judge).toBeUndefined();
    expect(loadConfig({ SEMANTIC_CACHE_JUDGE: 'anthropic:claude-3-5-haiku-latest' }).semanticCache.judge).toEqual({ provider: 'anthropic', model: 'claude-3-5-haiku-latest' });
    expect(() => loadConfig({ SEMANTIC_CACHE_JUDGE: 'gpt-4o-mini' })).toThrow('SEMANTIC_CACHE_JUDGE=gpt-4o-mini must be exact or provider:model of a chat model');
    const env = { SEMANTIC_CACHE_EMBEDDER: 'openai:text-embedding-3-small', SEMANTIC_CACHE_DEFAULT_DELTA: '0.05', SEMANTIC_CACHE_TTL_SECONDS: '60', SEMANTIC_CACHE_MAX_ENTRIES: '500', SEMANTIC_CACHE_EMBED_TIMEOUT_MS: '800' };
    expect(loadConfig(env).semanticCache).toEqual({ embedder: { provider: 'openai', model: 'text-embedding-3-small' }, judge: undefined, defaultDelta: 0.05, ttlSeconds: 60, maxEntries: 500, embedTimeoutMs: 800 });
    expect(() => loadConfig({ SEMANTIC_CACHE_EMBEDDER: 'text-embedding-3-small' })).toThrow('SEMANTIC_CACHE_EMBEDDER=text-embedding-3-small must be provider:model');
    expect(() => loadConfig({ SEMANTIC_CACHE_EMBEDDER: 'anthropic:claude' })).toThrow('with provider openai or google (the adapters with text embeddings)');
    expect(loadConfig({ SEMANTIC_CACHE_EMBEDDER: 'google:multimodalembedding@001' }).semanticCache.embedder).toEqual({ provider: 'google', model: 'multimodalembedding@001' });
    // The builtin E5, by name or feature URI; it needs its server.
    const e5 = { provider: 'text_extractor', model: 'multilingual_e5_large_instruct_v1' };
    for (const name of ['text_extractor@v1', 'mixpeek://text_extractor@v1/multilingual_e5_large_instruct_v1']) {
      expect(loadConfig({ SEMANTIC_CACHE_EMBEDDER: name, E5_BASE_URL: 'http://127.0.0.1:8080' }).semanticCache.embedder).toEqual(e5);
    }
    expect(() => loadConfig({ SEMANTIC_CACHE_EMBEDDER: 'text_extractor@v1' })).toThrow('SEMANTIC_CACHE_EMBEDDER=text_extractor@v1 needs E5_BASE_URL');
    expect(() => loadConfig({ SEMANTIC_CACHE_EMBEDDER: 'text_extractor@v2', E5_BASE_URL: 'http://127.0.0.1:8080' })).toThrow('or text_extractor@v1 (the builtin E5)');
    expect(() => loadConfig({ SEMANTIC_CACHE_DEFAULT_DELTA: '1.5' })).toThrow('SEMANTIC_CACHE_DEFAULT_DELTA=1.5 must be a number from 0 to 1');
    expect(() => loadConfig({ SEMANTIC_CACHE_DEFAULT_DELTA: 'low' })).toThrow('SEMANTIC_CACHE_DEFAULT_DELTA=low must be a number from 0 to 1');
    expect(() => loadConfig({ SEMANTIC_CACHE_TTL_SECONDS: '0' })).toThrow('SEMANTIC_CACHE_TTL_SECONDS=0 must be a whole number from 1');
    expect(() => loadConfig({ SEMANTIC_CACHE_MAX_ENTRIES: '0' })).toThrow('SEMANTIC_CACHE_MAX_ENTRIES=0 must be a whole number from 1');
    expect(() => loadConfig({ SEMANTIC_CACHE_EMBED_TIMEOUT_MS: '10' })).toThrow('SEMANTIC_CACHE_EMBED_TIMEOUT_MS=10 must be a whole number from 50 to 60000');
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
