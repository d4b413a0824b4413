import { GatewayHarness, useOpenAIGateway } from '../support/gateway-harness';

/** Retryable vs permanent provider errors, decided in one place and seen end to end. */
describe('provider errors: retries and permanent failures', () => {
  const t = useOpenAIGateway({ OPENAI_API_KEY: 'sk-secret-key-123456', JOB_ATTEMPTS: '3' });
  const chat = { provider: 'openai', model: 'gpt-4o-mini', inputs: { prompts: ['hi'] } };

  it('retries after a 503 and succeeds; the job records two attempts', async () => {
    t.fake.failNext({ status: 503 }, 1);
    const res = await t.gw.infer(chat, { prefer: 'respond-async' });
    const view = await t.gw.pollJob(res.body.job_id, (v) => v.status === 'COMPLETED');
    expect(view.attempts).toBe(2);
    expect(view.result.data.text).toBe('echo: hi');
    expect(t.fake.count('/chat/completions')).toBe(2);
  });

  it('a sync request rides through a retry and still gets 200', async () => {
    t.fake.failNext({ status: 500 }, 1);
    const res = await t.gw.infer(chat);
    expect(res.status).toBe(200);
    expect(t.fake.count('/chat/completions')).toBe(2);
  });

  it('does not retry a 400: the client gets 400 with the provider message, one call made', async () => {
    t.fake.failNext({ status: 400, body: { error: { message: "Invalid value for 'temperature'", type: 'invalid_request_error', param: 'temperature', code: null } } }, 1);
    const res = await t.gw.infer(chat);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ success: false, status: 400, error: { type: 'BadRequestError', code: 'provider_rejected_input' } });
    expect(res.body.error.message).toContain("Invalid value for 'temperature'");
    expect(t.fake.count('/chat/completions')).toBe(1);
  });

  it('a 429 with retry-after-ms waits at least that long before the retry', async () => {
    t.fake.failNext({ status: 429, headers: { 'retry-after-ms': '600' } }, 1);
    const res = await t.gw.infer(chat);
    expect(res.status).toBe(200);
    const [first, second] = t.fake.requests;
    expect(first && second).toBeTruthy();
    expect(res.body.latency_ms).toBeGreaterThanOrEqual(600);
  });

  it('503 provider_unavailable once the attempts run out, carrying the last provider message', async () => {
    t.fake.failNext({ status: 502, body: { error: { message: 'upstream exploded', type: 'server_error', param: null, code: null } } }, 3);
    const res = await t.gw.infer(chat);
    expect(res.status).toBe(503);
    expect(res.body.error).toMatchObject({ type: 'InferenceServiceUnavailableError', code: 'provider_unavailable' });
    expect(res.body.error.message).toContain('upstream exploded');
    expect(res.body.error.message).toContain('gave up after 3 attempts');
    expect(t.fake.count('/chat/completions')).toBe(3);
  });

  it('a provider rejecting our key is a 500 provider_auth_failed that never shows the key', async () => {
    t.fake.failNext({ status: 401, body: { error: { message: 'Incorrect API key provided: sk-secret-key-123456', type: 'invalid_request_error', param: null, code: 'invalid_api_key' } } }, 1);
    const res = await t.gw.infer(chat);
    expect(res.status).toBe(500);
    expect(res.body.error.code).toBe('provider_auth_failed');
    expect(JSON.stringify(res.body)).not.toContain('sk-secret');
    expect(t.fake.count('/chat/completions')).toBe(1);
  });

  it('an unreachable provider is retried, then 503 provider_unreachable', async () => {
    const dead = new GatewayHarness({ OPENAI_API_KEY: 'k', OPENAI_BASE_URL: 'http://127.0.0.1:9/v1', JOB_ATTEMPTS: '2' });
    await dead.startApi();
    await dead.startWorker();
    try {
      const res = await dead.infer(chat);
      expect(res.status).toBe(503);
      expect(res.body.error.code).toBe('provider_unreachable');
      expect(res.body.error.message).toContain('gave up after 2 attempts');
    } finally {
      await dead.close();
    }
  });
});
