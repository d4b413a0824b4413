import { useOpenAIGateway } from '../support/gateway-harness';

/** Every class of bad input: a clear error in the spec's shapes, and nothing enqueued. */
describe('POST /v1/inference: validation, errors and auth', () => {
  const auth = { authorization: 'Bearer key-one' };
  const chat = { provider: 'openai', model: 'gpt-4o-mini', inputs: { prompts: ['hi'] } };
  // No worker: a request that passed validation would wait, so every case below is async-safe.
  const t = useOpenAIGateway({ API_KEYS: 'key-one, key-two', API_MAX_BODY_BYTES: '200000' }, { worker: false });

  const invalid = (body: unknown, headers: Record<string, string> = {}) => t.gw.infer(body, { ...auth, 'prefer': 'respond-async', ...headers });

  it.each([
    ['inputs missing', { provider: 'openai', model: 'm' }, ['body', 'inputs'], 'missing'],
    ['inputs not an object', { provider: 'openai', model: 'm', inputs: ['x'] }, ['body', 'inputs'], 'dict_type'],
    ['provider not a string', { provider: 5, model: 'm', inputs: {} }, ['body', 'provider'], 'string_type'],
    ['model empty', { provider: 'openai', model: '', inputs: {} }, ['body', 'model'], 'string_too_short'],
    ['parameters not an object', { ...chat, parameters: 'hot' }, ['body', 'parameters'], 'dict_type'],
    ['enable_semantic_cache not a boolean', { ...chat, enable_semantic_cache: 'yes' }, ['body', 'enable_semantic_cache'], 'bool_type'],
    ['cache_delta above 1', { ...chat, cache_delta: 1.5 }, ['body', 'cache_delta'], 'less_than_equal'],
    ['cache_delta below 0', { ...chat, cache_delta: -0.1 }, ['body', 'cache_delta'], 'greater_than_equal'],
    ['no request mode', { inputs: { text: 'x' } }, ['body'], 'value_error'],
    ['two request modes', { ...chat, inference_name: 'x_1_0_0' }, ['body'], 'value_error'],
    ['provider without model', { provider: 'openai', inputs: { text: 'x' } }, ['body', 'model'], 'missing'],
    ['model without provider', { model: 'gpt-4o', inputs: { text: 'x' } }, ['body', 'provider'], 'missing'],
    ['prompts not a list', { provider: 'openai', model: 'gpt-4o', inputs: { prompts: 'hi' } }, ['body', 'inputs', 'prompts'], 'list_type'],
    ['prompts with a number', { provider: 'openai', model: 'gpt-4o', inputs: { prompts: ['a', 3] } }, ['body', 'inputs', 'prompts'], 'string_type'],
    ['temperature out of range', { ...chat, parameters: { temperature: 3 } }, ['body', 'parameters', 'temperature'], 'less_than_equal'],
    ['max_tokens not an integer', { ...chat, parameters: { max_tokens: 1.5 } }, ['body', 'parameters', 'max_tokens'], 'int_type'],
    ['image_url not http(s)', { provider: 'openai', model: 'gpt-4o', inputs: { prompts: ['a'], image_url: 'file:///etc/passwd' } }, ['body', 'inputs', 'image_url'], 'url_scheme'],
    ['image_base64 not base64', { provider: 'openai', model: 'gpt-4o', inputs: { prompts: ['a'], image_base64: 'not base64 at all!' } }, ['body', 'inputs', 'image_base64'], 'base64_decode'],
  ])('422 when %s', async (_what, body, loc, type) => {
    const res = await invalid(body);
    expect(res.status).toBe(422);
    expect(res.body.detail).toEqual(expect.arrayContaining([expect.objectContaining({ loc, type, msg: expect.any(String) })]));
    expect(res.body.detail.every((d: any) => Array.isArray(d.loc) && d.msg.length > 0)).toBe(true);
  });

  it('422 json_invalid for a body that is not JSON, and for a non-JSON content type', async () => {
    const broken = await t.gw.request('POST', '/v1/inference', '{"provider": ', { ...auth, 'content-type': 'application/json' });
    expect(broken.status).toBe(422);
    expect(broken.body.detail[0]).toMatchObject({ loc: ['body'], type: 'json_invalid' });
    const text = await t.gw.request('POST', '/v1/inference', 'hello', { ...auth, 'content-type': 'text/plain' });
    expect(text.status).toBe(422);
    expect(text.body.detail[0].loc).toEqual(['body']);
  });

  it('400 request_too_large past API_MAX_BODY_BYTES, in the error envelope', async () => {
    const res = await invalid({ provider: 'openai', model: 'gpt-4o', inputs: { prompts: ['x'.repeat(300_000)] } });
    expect(res.status).toBe(400);
    expect(res.body).toEqual({ success: false, status: 400, error: expect.objectContaining({ type: 'BadRequestError', code: 'request_too_large' }) });
  });

  it('400 for an unknown provider, listing the known ones', async () => {
    const res = await invalid({ provider: 'openia', model: 'gpt-4o', inputs: { prompts: ['x'] } });
    expect(res.status).toBe(400);
    expect(res.body.success).toBe(false);
    expect(res.body.error).toMatchObject({ type: 'BadRequestError', code: 'unknown_provider', details: { known_providers: ['openai', 'google', 'anthropic'] } });
    expect(res.body.error.message).toContain('openai, google, anthropic');
  });

  it('400 provider_not_configured for a known provider without configuration', async () => {
    const res = await invalid({ provider: 'anthropic', model: 'claude-3-5-sonnet', inputs: { prompts: ['x'] } });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ type: 'BadRequestError', code: 'provider_not_configured' });
    expect(res.body.error.message).toContain('ANTHROPIC_API_KEY');
  });

  it('400 when the inputs do not fit the model task, saying which inputs it takes', async () => {
    const res = await invalid({ provider: 'openai', model: 'text-embedding-3-large', inputs: { prompts: ['x'] } });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('inputs_do_not_fit_task');
    expect(res.body.error.message).toContain('inputs.text or inputs.texts');
    const both = await invalid({ provider: 'openai', model: 'text-embedding-3-large', inputs: { text: 'a', texts: ['b'] } });
    expect(both.status).toBe(400);
    expect(both.body.error.message).toContain('only one of');
    const missing = await invalid({ provider: 'openai', model: 'whisper-1', inputs: {} });
    expect(missing.status).toBe(400);
    expect(missing.body.error.message).toContain('inputs.audio_url or inputs.audio_base64');
  });

  it('404 for inference_name and feature_uri while no plugins are loaded', async () => {
    for (const body of [
      { inference_name: 'my_text_embedder_1_0_0', inputs: { text: 'hello' } },
      { feature_uri: 'mixpeek://my_custom_embedder@1.0.0/embedding', inputs: { text: 'hello' } },
    ]) {
      const res = await invalid(body);
      expect(res.status).toBe(404);
      expect(res.body).toMatchObject({ success: false, status: 404, error: { type: 'NotFoundError', code: 'plugin_not_found' } });
    }
  });

  it('nothing was enqueued by any of the refused requests', async () => {
    const counts = await t.gw.api!.get((await import('@lib/queue')).QueueRegistry).get('openai' as any).getJobCounts();
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(0);
  });

  it('401 without a key, with a wrong key; both accepted keys work; /health needs none', async () => {
    const none = await t.gw.infer(chat, { prefer: 'respond-async' });
    expect(none.status).toBe(401);
    expect(none.body).toMatchObject({ success: false, status: 401, error: { type: 'UnauthorizedError', code: 'missing_api_key' } });
    expect(none.headers.get('www-authenticate')).toBe('Bearer');
    const wrong = await t.gw.infer(chat, { authorization: 'Bearer key-three', prefer: 'respond-async' });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.code).toBe('invalid_api_key');
    for (const key of ['key-one', 'key-two']) {
      const ok = await t.gw.infer(chat, { authorization: `Bearer ${key}`, prefer: 'respond-async' });
      expect(ok.status).toBe(202);
    }
    const jobs = await t.gw.request('GET', '/v1/inference/jobs/openai-x');
    expect(jobs.status).toBe(401);
    const health = await t.gw.request('GET', '/health');
    expect(health.status).toBe(200);
    expect(health.body).toEqual({ status: 'ok', redis: 'up' });
  });

  it('unknown routes and unknown jobs are 404 in the envelope', async () => {
    const route = await t.gw.request('GET', '/v2/nothing', undefined, auth);
    expect(route.status).toBe(404);
    expect(route.body).toMatchObject({ success: false, status: 404, error: { type: 'NotFoundError' } });
    const job = await t.gw.request('GET', '/v1/inference/jobs/openai-00000000-0000-0000-0000-000000000000', undefined, auth);
    expect(job.status).toBe(404);
    expect(job.body.error.code).toBe('job_not_found');
    const badId = await t.gw.request('GET', '/v1/inference/jobs/nonsense', undefined, auth);
    expect(badId.status).toBe(404);
  });
});
