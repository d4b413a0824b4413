import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { TeiFake } from '../fakes/tei-fake';
import { eventually, GatewayHarness, useGatewayWithFake } from '../support/gateway-harness';
import { MediaServer, tinyPng } from '../support/media-server';
import { FIXTURE_CODE, PluginFixtures, processAlive } from '../support/plugin-fixtures';

const E5_URI = 'mixpeek://text_extractor@v1/multilingual_e5_large_instruct_v1';
const norm = (v: number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
const unit = (v: number[]) => v.map((x) => x / norm(v));

/** The plugins folder an operator would mount: the shipped example, test plugins, and one broken folder. */
const fx = new PluginFixtures();
fx.copyExample('hash_text_embedder');
fx.add('echo', {}, FIXTURE_CODE.echo);
fx.add('thrower', {}, FIXTURE_CODE.thrower);
fx.add('hanger', { timeout_ms: 500, concurrency: 1 }, FIXTURE_CODE.hanger(fx.file('hanger.pid')));
fx.add('crasher', {}, FIXTURE_CODE.crasher);
fx.add('bad_output', {}, FIXTURE_CODE.bad_output);
fx.add(
  'multi',
  {
    version: 'v2',
    outputs: [
      { feature_name: 'vec', feature_type: 'embedding', embedding_dim: 4, distance_metric: 'dot' },
      { feature_name: 'stats', feature_type: 'json' },
    ],
  },
  `exports.infer = async (inputs, parameters, context) =>
     context.output === 'vec' ? { embedding: [1, 0, 0, 0], dimensions: 4 } : { output: context.output ?? null, length: inputs.text.length };`,
);
fx.add(
  'image_digest',
  { inputs: { type: 'object', properties: { image_url: { type: 'string', format: 'uri' } }, required: ['image_url'] } },
  `const { createHash } = require('node:crypto');
   exports.infer = async (inputs, parameters, context) => {
     const { data, mime } = await context.media.bytes('image_url');
     return { sha256: createHash('sha256').update(data).digest('hex'), bytes: data.length, mime };
   };`,
);
fx.addRaw('broken', '{"name": "broken", "version": "one"}');

describe('Plugins: inference_name, feature_uri, the builtin E5 extractor (HTTP -> Redis -> worker -> plugin process / TEI fake)', () => {
  const t = useGatewayWithFake(
    () => TeiFake.start({ maxBatch: 4 }),
    (tei) => ({ E5_BASE_URL: tei.baseUrl, E5_MAX_BATCH: '4' }),
    { PLUGINS_DIR: fx.dir, PLUGIN_KILL_GRACE_MS: '100', MEDIA_ALLOW_PRIVATE_URLS: 'true' },
  );
  let media: MediaServer;
  const png = tinyPng(2048);

  beforeAll(async () => {
    media = await MediaServer.start({ '/cat.png': png });
  });
  afterAll(async () => {
    await media.close();
    fx.remove();
  });

  it('GET /v1/inference/plugins lists the loaded plugins (not the broken one) with names, URIs, dimensions and input schemas', async () => {
    const res = await t.gw.request('GET', '/v1/inference/plugins');
    expect(res.status).toBe(200);
    const byName = Object.fromEntries(res.body.plugins.map((p: { name: string }) => [p.name, p]));
    expect(Object.keys(byName).sort()).toEqual(['bad_output', 'crasher', 'echo', 'hanger', 'hash_text_embedder', 'image_digest', 'multi', 'text_extractor', 'thrower']);
    expect(byName.text_extractor).toMatchObject({
      version: 'v1',
      inference_name: 'text_extractor_v1',
      builtin: true,
      available: true,
      outputs: [{ feature_name: 'multilingual_e5_large_instruct_v1', feature_uri: E5_URI, embedding_dim: 1024, distance_metric: 'cosine' }],
      inputs: { type: 'object', oneOf: [{ required: ['text'] }, { required: ['texts'] }] },
    });
    expect(byName.hash_text_embedder).toMatchObject({
      inference_name: 'hash_text_embedder_1_0_0',
      outputs: [{ feature_uri: 'mixpeek://hash_text_embedder@1.0.0/embedding', embedding_dim: 256 }],
      parameters: { properties: { min_n: { default: 3 } } },
      timeout_ms: 30000,
      concurrency: 2,
    });
    expect(byName.multi.outputs.map((o: { feature_uri: string }) => o.feature_uri)).toEqual(['mixpeek://multi@v2/vec', 'mixpeek://multi@v2/stats']);
  });

  it('inference_name and feature_uri run the same plugin and answer like any embedder', async () => {
    const byName = await t.gw.infer({ inference_name: 'hash_text_embedder_1_0_0', inputs: { text: 'hello world' }, parameters: {} });
    expect(byName.status).toBe(200);
    expect(byName.body).toMatchObject({ provider: 'plugin', model: 'hash_text_embedder_1_0_0', tokens_used: null, cached: false });
    expect(byName.body.data.dimensions).toBe(256);
    expect(byName.body.data.embedding).toHaveLength(256);
    expect(norm(byName.body.data.embedding)).toBeCloseTo(1, 6);
    expect(typeof byName.body.latency_ms).toBe('number');

    const byUri = await t.gw.infer({ feature_uri: 'mixpeek://hash_text_embedder@1.0.0/embedding', inputs: { text: 'hello world' } });
    expect(byUri.status).toBe(200);
    expect(byUri.body.model).toBe('hash_text_embedder_1_0_0');
    expect(byUri.body.data.embedding).toEqual(byName.body.data.embedding);

    const batch = await t.gw.infer({ feature_uri: 'mixpeek://hash_text_embedder@1.0.0', inputs: { texts: ['colour', 'color', 'hello world'] } });
    expect(batch.status).toBe(200);
    expect(batch.body.data.embeddings).toHaveLength(3);
    expect(batch.body.data.embeddings[2]).toEqual(byName.body.data.embedding);
  });

  it("a plugin's context.progress() shows in the job view, in percent", async () => {
    const texts = Array.from({ length: 128 }, (_, i) => `text number ${i}`);
    const res = await t.gw.infer({ inference_name: 'hash_text_embedder_1_0_0', inputs: { texts } }, { prefer: 'respond-async' });
    expect(res.status).toBe(202);
    // The example plugin reports every 64 texts: 0.5, then 1 (100 %).
    const view = await t.gw.pollJob(res.body.job_id, (v) => v.status === 'COMPLETED' && v.progress === 100);
    expect(view.result.data.embeddings).toHaveLength(128);
  });

  it('plugin parameters are validated and their defaults applied before the job is queued', async () => {
    const echo = await t.gw.infer({ inference_name: 'echo_1_0_0', inputs: { text: 'hi', unused: null } });
    expect(echo.status).toBe(200);
    expect(echo.body.data).toMatchObject({ inputs: { text: 'hi' }, parameters: {}, output: 'result', plugin: 'echo@1.0.0' });

    const bad = await t.gw.infer({ inference_name: 'hash_text_embedder_1_0_0', inputs: { text: 5, extra: 'x' }, parameters: { min_n: 0, colour: 'blue' } });
    expect(bad.status).toBe(422);
    expect(bad.body.detail).toEqual(
      expect.arrayContaining([
        { loc: ['body', 'inputs', 'extra'], msg: 'Extra inputs are not permitted', type: 'extra_forbidden' },
        { loc: ['body', 'inputs', 'text'], msg: 'Input should be a valid string', type: 'string_type' },
        { loc: ['body', 'parameters', 'min_n'], msg: 'Input should be greater than or equal to 1', type: 'greater_than_equal' },
        { loc: ['body', 'parameters', 'colour'], msg: 'Extra inputs are not permitted', type: 'extra_forbidden' },
      ]),
    );
    const none = await t.gw.infer({ feature_uri: E5_URI, inputs: {} });
    expect(none.status).toBe(422);
    expect(none.body.detail).toEqual([{ loc: ['body', 'inputs'], msg: 'Exactly one of text, texts is required', type: 'value_error' }]);
    expect(t.fake.count()).toBe(0);

    // The plugin's own 400 (min_n > max_n is a rule the schema cannot say).
    const refused = await t.gw.infer({ inference_name: 'hash_text_embedder_1_0_0', inputs: { text: 'x' }, parameters: { min_n: 6 } });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatchObject({ type: 'BadRequestError', code: 'plugin_rejected_input', message: expect.stringContaining('Plugin hash_text_embedder@1.0.0 rejected the input: parameters.min_n (6)') });
  });

  it('builtin E5 by feature_uri: one 1024-d L2-normalised vector from the TEI server', async () => {
    t.fake.setScale(3);
    const res = await t.gw.infer({ feature_uri: E5_URI, inputs: { text: 'hello world' }, parameters: {} });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ provider: 'plugin', model: 'text_extractor_v1', data: { dimensions: 1024 } });
    const v: number[] = res.body.data.embedding;
    expect(v).toHaveLength(1024);
    expect(norm(v)).toBeCloseTo(1, 6);
    unit(t.fake.vectorOf('hello world')).slice(0, 8).forEach((x, i) => expect(v[i]).toBeCloseTo(x, 6));
    expect(t.fake.requests).toHaveLength(1);
    expect(t.fake.requests[0]).toMatchObject({ path: '/embed', body: { inputs: ['hello world'], normalize: true } });
  });

  it('builtin E5 by inference_name: texts in E5_MAX_BATCH chunks, queries in the instruct format, answers in order', async () => {
    const texts = ['uno', 'dos', 'tres', 'cuatro', 'cinco', 'seis'];
    const res = await t.gw.infer({ inference_name: 'text_extractor_v1', inputs: { texts }, parameters: { task: 'Find the number' } });
    expect(res.status).toBe(200);
    expect(res.body.data.dimensions).toBe(1024);
    expect(res.body.data.embeddings).toHaveLength(6);
    const sent = t.fake.requests.map((r) => (r.body as { inputs: string[] }).inputs);
    expect(sent.map((b) => b.length)).toEqual([4, 2]);
    expect(sent.flat()).toEqual(texts.map((x) => `Instruct: Find the number\nQuery: ${x}`));
    res.body.data.embeddings.forEach((e: number[], i: number) => expect(e[0]).toBeCloseTo(unit(t.fake.vectorOf(sent.flat()[i]))[0], 6));
  });

  it('a malformed feature URI is a 422 saying what is wrong; unknown ones are 404 naming what exists', async () => {
    const malformed = await t.gw.infer({ feature_uri: 'mixpeek://text_extractor/multilingual', inputs: { text: 'x' } });
    expect(malformed.status).toBe(422);
    expect(malformed.body.detail[0]).toMatchObject({ loc: ['body', 'feature_uri'], type: 'value_error', msg: expect.stringContaining('"text_extractor" has no version') });

    const version = await t.gw.infer({ feature_uri: 'mixpeek://text_extractor@v9/multilingual_e5_large_instruct_v1', inputs: { text: 'x' } });
    expect(version.status).toBe(404);
    expect(version.body).toMatchObject({ success: false, status: 404, error: { type: 'NotFoundError', code: 'plugin_not_found' } });
    expect(version.body.error.details).toMatchObject({ extractor: 'text_extractor', version: 'v9', output: 'multilingual_e5_large_instruct_v1', known_versions: ['v1'] });
    expect(version.body.error.details.known_feature_uris).toEqual(expect.arrayContaining([E5_URI, 'mixpeek://hash_text_embedder@1.0.0/embedding']));

    const output = await t.gw.infer({ feature_uri: 'mixpeek://text_extractor@v1/e5_small', inputs: { text: 'x' } });
    expect(output.status).toBe(404);
    expect(output.body.error).toMatchObject({ code: 'feature_not_found', details: { output: 'e5_small', known_outputs: ['multilingual_e5_large_instruct_v1'] } });

    const name = await t.gw.infer({ inference_name: 'my_text_embedder_1_0_0', inputs: { text: 'x' } });
    expect(name.status).toBe(404);
    expect(name.body.error.details.known_inference_names).toEqual(expect.arrayContaining(['text_extractor_v1', 'hash_text_embedder_1_0_0']));
    expect(name.body.error.details.known_inference_names).not.toContain('broken_one');
  });

  it('a multi-output plugin gets the output its feature URI names; naming none is a 422', async () => {
    const vec = await t.gw.infer({ feature_uri: 'mixpeek://multi@v2/vec', inputs: { text: 'abc' } });
    expect(vec.body.data).toEqual({ embedding: [1, 0, 0, 0], dimensions: 4 });
    const stats = await t.gw.infer({ feature_uri: 'mixpeek://multi@v2/stats', inputs: { text: 'abc' } });
    expect(stats.body.data).toEqual({ output: 'stats', length: 3 });
    const byName = await t.gw.infer({ inference_name: 'multi_v2', inputs: { text: 'abc' } });
    expect(byName.body.data).toEqual({ output: null, length: 3 });
    const ambiguous = await t.gw.infer({ feature_uri: 'mixpeek://multi@v2', inputs: { text: 'abc' } });
    expect(ambiguous.status).toBe(422);
    expect(ambiguous.body.detail[0].msg).toContain('multi@v2 has 2 outputs (vec, stats)');
  });

  it('a plugin that throws fails the job with an error naming it; one asking for a retry is retried', async () => {
    const res = await t.gw.infer({ inference_name: 'thrower_1_0_0', inputs: { text: 'this' } });
    expect(res.status).toBe(500);
    expect(res.body.error).toEqual({
      type: 'InternalServerError',
      code: 'plugin_failed',
      message: 'Plugin thrower@1.0.0 failed: TypeError: model exploded on this',
      details: { plugin: 'thrower@1.0.0' },
    });
    const busy = await t.gw.infer({ inference_name: 'thrower_1_0_0', inputs: { text: 'busy' } }, { Prefer: 'respond-async' });
    const view = await t.gw.pollJob(busy.body.job_id, (v) => v.status === 'FAILED', 30_000);
    expect(view.attempts).toBe(4);
    expect(view.error).toMatchObject({ type: 'InferenceServiceUnavailableError', message: expect.stringContaining('thrower@1.0.0: Error: model server busy (gave up after 4 attempts)') });
  });

  it('a hanging plugin is stopped at its timeout (504) and its process killed; the worker goes on', async () => {
    rmSync(fx.file('hanger.pid'), { force: true });
    const res = await t.gw.infer({ inference_name: 'hanger_1_0_0', inputs: { text: 'spin' } });
    expect(res.status).toBe(504);
    expect(res.body.error).toMatchObject({ type: 'TimeoutError', code: 'plugin_timeout', message: 'Plugin hanger@1.0.0 did not finish within its timeout of 500 ms; the call was stopped' });
    const pid = Number(readFileSync(fx.file('hanger.pid'), 'utf8'));
    await eventually(() => !processAlive(pid), 10_000, `hung plugin process ${pid} to be killed`);
    expect((await t.gw.infer({ inference_name: 'echo_1_0_0', inputs: { text: 'still here' } })).status).toBe(200);
  });

  it('canceling a job stops its plugin: a process that ignores the abort signal is killed', async () => {
    rmSync(fx.file('hanger.pid'), { force: true });
    const submitted = await t.gw.infer({ inference_name: 'hanger_1_0_0', inputs: { text: 'wait' } }, { Prefer: 'respond-async' });
    expect(submitted.status).toBe(202);
    expect(submitted.body.job_id).toMatch(/^plugins-/);
    const pid = await eventually(() => {
      try {
        return Number(readFileSync(fx.file('hanger.pid'), 'utf8'));
      } catch {
        return 0;
      }
    });
    const canceled = await t.gw.request('DELETE', `/v1/inference/jobs/${submitted.body.job_id}`);
    expect([200, 202]).toContain(canceled.status);
    await t.gw.pollJob(submitted.body.job_id, (v) => v.status === 'CANCELED');
    await eventually(() => !processAlive(pid), 10_000, `canceled plugin process ${pid} to be killed`);
  });

  it.each([
    ['exit', 'its process exited with code 3'],
    ['kill', 'its process was killed by SIGKILL'],
    ['uncaught', 'boom from a timer'],
  ])('a plugin that crashes its process (%s) fails the job cleanly; the worker and the plugin recover', async (mode, message) => {
    const res = await t.gw.infer({ inference_name: 'crasher_1_0_0', inputs: { text: mode } });
    expect(res.status).toBe(500);
    expect(res.body.error).toMatchObject({ type: 'InternalServerError', code: 'plugin_crashed', message: expect.stringContaining('Plugin crasher@1.0.0 crashed') });
    expect(res.body.error.message).toContain(message);
    const again = await t.gw.infer({ inference_name: 'crasher_1_0_0', inputs: { text: 'fine' } });
    expect(again.status).toBe(200);
    expect(again.body.data.alive).toBe(true);
    expect(processAlive(again.body.data.pid)).toBe(true);
  });

  it.each([
    ['array', 'plugin_invalid_output', 'Plugin bad_output@1.0.0 returned an array; infer() must return an object'],
    ['undefined', 'plugin_invalid_output', 'Plugin bad_output@1.0.0 returned nothing (undefined)'],
    ['bigint', 'plugin_failed', 'its result is not JSON-serialisable'],
  ])('a plugin that returns %s gets a clean error naming it', async (text, code, message) => {
    const res = await t.gw.infer({ inference_name: 'bad_output_1_0_0', inputs: { text } });
    expect(res.status).toBe(500);
    expect(res.body.error).toMatchObject({ code, message: expect.stringContaining(message) });
  });

  it('plugins read media inputs through the worker\'s safe downloader; a failed download is the client\'s 400', async () => {
    const res = await t.gw.infer({ inference_name: 'image_digest_1_0_0', inputs: { image_url: media.url('/cat.png') } });
    expect(res.status).toBe(200);
    expect(res.body.data).toEqual({ sha256: createHash('sha256').update(png).digest('hex'), bytes: png.length, mime: 'image/png' });
    const missing = await t.gw.infer({ inference_name: 'image_digest_1_0_0', inputs: { image_url: media.url('/nope.png') } });
    expect(missing.status).toBe(400);
    expect(missing.body.error).toMatchObject({ type: 'BadRequestError', code: 'media_download_failed' });
  });

  it('answers 503 naming E5_BASE_URL when the builtin is not configured', async () => {
    const bare = new GatewayHarness({ PLUGINS_DIR: fx.dir }, t.gw.prefix);
    try {
      await bare.startApi();
      const res = await bare.infer({ feature_uri: E5_URI, inputs: { text: 'x' } });
      expect(res.status).toBe(503);
      expect(res.body.error).toMatchObject({ type: 'InferenceServiceUnavailableError', code: 'plugin_not_configured', details: { variable: 'E5_BASE_URL' } });
      expect(res.body.error.message).toContain('set E5_BASE_URL');
      const listed = await bare.request('GET', '/v1/inference/plugins');
      expect(listed.body.plugins.find((p: { builtin: boolean }) => p.builtin)).toMatchObject({ available: false });
    } finally {
      await bare.api?.close();
    }
  });
});
