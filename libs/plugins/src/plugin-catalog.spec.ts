import { GatewayError, RequestValidationError } from '@lib/contracts';
import { loadConfig } from '@lib/config';
import { PluginFixtures } from '../../../test/support/plugin-fixtures';
import { PluginCatalog, pluginTargetOf } from './plugin-catalog';
import { loadPluginFolder } from './plugin-loader';

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  throw new Error('did not throw');
}

describe('plugin loading and the catalog', () => {
  const fx = new PluginFixtures();
  const defaults = { timeoutMs: 1000, concurrency: 3 };

  beforeAll(() => {
    fx.copyExample('hash_text_embedder');
    fx.add('multi', {
      version: 'v2',
      outputs: [
        { feature_name: 'vec', feature_type: 'embedding', embedding_dim: 4 },
        { feature_name: 'stats', feature_type: 'json' },
      ],
      parameters: { type: 'object', properties: { k: { type: 'integer', minimum: 1, default: 5 } }, additionalProperties: false },
      timeout_ms: 250,
      concurrency: 1,
    }, 'exports.infer = async () => ({})');
    fx.addRaw('not_json', '{ "name": ');
    fx.addRaw('missing_fields', JSON.stringify({ name: 'missing_fields', version: 'latest', outputs: [{ feature_name: 'e', feature_type: 'embedding' }] }), { 'index.js': '' });
    fx.addRaw('no_entry', JSON.stringify({ name: 'no_entry', version: '1.0.0', outputs: [{ feature_name: 'x', feature_type: 'json' }], inputs: { type: 'object' } }));
    fx.addRaw('escapes', JSON.stringify({ name: 'escapes', version: '1.0.0', entry: '../multi/index.js', outputs: [{ feature_name: 'x', feature_type: 'json' }], inputs: { type: 'object' } }));
    fx.addRaw('bad_schema', JSON.stringify({ name: 'bad_schema', version: '1.0.0', outputs: [{ feature_name: 'x', feature_type: 'json' }], inputs: { type: 'object', properties: { a: { type: 'strin' } } } }), { 'index.js': '' });
    fx.add('multi_again', { name: 'multi', version: 'v2' }, 'exports.infer = async () => ({})');
    fx.add('text_extractor', { version: 'v1' }, 'exports.infer = async () => ({})');
    fx.addRaw('.hidden', '{}');
  });
  afterAll(() => fx.remove());

  it('loads good folders and reports every broken one by name with what is wrong', () => {
    const { plugins, broken } = loadPluginFolder(fx.dir, defaults);
    expect(plugins.map((p) => p.inferenceName).sort()).toEqual(['hash_text_embedder_1_0_0', 'multi_v2', 'text_extractor_v1']);
    const problems = Object.fromEntries(broken.map((b) => [b.name, b.problems.join(' | ')]));
    expect(Object.keys(problems).sort()).toEqual(['bad_schema', 'escapes', 'missing_fields', 'multi', 'no_entry', 'not_json']);
    expect(problems.not_json).toContain('plugin.json is not valid JSON');
    expect(problems.missing_fields).toContain("version: String should match pattern '^(v");
    expect(problems.missing_fields).toContain('inputs: Field required');
    expect(problems.missing_fields).toContain('outputs.0.embedding_dim: Field required');
    expect(problems.no_entry).toContain('entry index.js does not exist');
    expect(problems.escapes).toContain('points outside the plugin folder');
    expect(problems.bad_schema).toContain('inputs: not a usable JSON Schema');
    expect(problems.multi).toContain('is also defined in');
    const multi = plugins.find((p) => p.name === 'multi')!;
    expect(multi).toMatchObject({ timeoutMs: 250, concurrency: 1, builtin: false });
    expect(multi.outputs[0]).toEqual({ feature_name: 'vec', feature_type: 'embedding', embedding_dim: 4, distance_metric: 'cosine' });
    expect(plugins.find((p) => p.name === 'hash_text_embedder')).toMatchObject({ timeoutMs: 30000, concurrency: 2 });
  });

  describe('PluginCatalog', () => {
    let catalog: PluginCatalog;
    beforeAll(() => {
      catalog = PluginCatalog.load(loadConfig({ PLUGINS_DIR: fx.dir, PLUGIN_TIMEOUT_MS: '1000' }));
    });

    it('holds the builtin text extractor and refuses a custom plugin that takes its name', () => {
      expect(catalog.get('text_extractor_v1')).toMatchObject({ builtin: true, outputs: [{ feature_name: 'multilingual_e5_large_instruct_v1', embedding_dim: 1024 }] });
      expect(catalog.broken.find((b) => b.name === 'text_extractor')?.problems[0]).toContain("builtin extractor's name and version");
    });

    it('resolves inference_name and feature_uri, with or without the output of a one-output extractor', () => {
      const byName = catalog.resolve({ kind: 'inference_name', inferenceName: 'hash_text_embedder_1_0_0' });
      expect(pluginTargetOf(byName)).toEqual({ inferenceName: 'hash_text_embedder_1_0_0', name: 'hash_text_embedder', version: '1.0.0', output: 'embedding' });
      const byUri = catalog.resolve({ kind: 'feature_uri', featureUri: 'mixpeek://multi@v2/stats' });
      expect(pluginTargetOf(byUri)).toEqual({ inferenceName: 'multi_v2', name: 'multi', version: 'v2', output: 'stats' });
      expect(pluginTargetOf(catalog.resolve({ kind: 'inference_name', inferenceName: 'multi_v2' })).output).toBeUndefined();
      expect(catalog.resolve({ kind: 'feature_uri', featureUri: 'mixpeek://text_extractor@v1' }).output?.feature_name).toBe('multilingual_e5_large_instruct_v1');
    });

    it('answers 404 naming what was asked and what exists', () => {
      const name = thrown(() => catalog.resolve({ kind: 'inference_name', inferenceName: 'nope_1_0_0' })) as GatewayError;
      expect(name).toMatchObject({ status: 404, type: 'NotFoundError', code: 'plugin_not_found' });
      expect(name.details?.known_inference_names).toEqual(expect.arrayContaining(['text_extractor_v1', 'hash_text_embedder_1_0_0', 'multi_v2']));

      const version = thrown(() => catalog.resolve({ kind: 'feature_uri', featureUri: 'mixpeek://multi@v3/vec' })) as GatewayError;
      expect(version.message).toContain('extractor multi has no version v3 (known: v2)');
      expect(version.details).toMatchObject({ extractor: 'multi', version: 'v3', output: 'vec', known_versions: ['v2'] });
      expect(version.details?.known_feature_uris).toEqual(expect.arrayContaining(['mixpeek://multi@v2/vec', 'mixpeek://text_extractor@v1/multilingual_e5_large_instruct_v1']));

      const extractor = thrown(() => catalog.resolve({ kind: 'feature_uri', featureUri: 'mixpeek://ghost@v1/x' })) as GatewayError;
      expect(extractor.message).toContain('no extractor is named ghost');

      const output = thrown(() => catalog.resolve({ kind: 'feature_uri', featureUri: 'mixpeek://multi@v2/nope' })) as GatewayError;
      expect(output).toMatchObject({ status: 404, code: 'feature_not_found' });
      expect(output.details).toMatchObject({ output: 'nope', known_outputs: ['vec', 'stats'] });
    });

    it('answers 422 when a multi-output extractor is named without an output', () => {
      const err = thrown(() => catalog.resolve({ kind: 'feature_uri', featureUri: 'mixpeek://multi@v2' })) as RequestValidationError;
      expect(err).toBeInstanceOf(RequestValidationError);
      expect(err.items[0].msg).toContain('multi@v2 has 2 outputs (vec, stats), so the URI must name one');
    });

    it('validates inputs and parameters against the schemas, filling in defaults', () => {
      const multi = catalog.get('multi_v2')!;
      expect(catalog.validate(multi, { text: 'hi', ignored: null }, undefined)).toEqual({ inputs: { text: 'hi' }, parameters: { k: 5 } });
      const err = thrown(() => catalog.validate(multi, { text: 3, extra: 'x' }, { k: 0 })) as RequestValidationError;
      expect(err.items).toEqual(
        expect.arrayContaining([
          { loc: ['body', 'inputs', 'extra'], msg: 'Extra inputs are not permitted', type: 'extra_forbidden' },
          { loc: ['body', 'inputs', 'text'], msg: 'Input should be a valid string', type: 'string_type' },
          { loc: ['body', 'parameters', 'k'], msg: 'Input should be greater than or equal to 1', type: 'greater_than_equal' },
        ]),
      );
      expect(err.items).toHaveLength(3);
      const missing = thrown(() => catalog.validate(multi, {}, {})) as RequestValidationError;
      expect(missing.items).toEqual([{ loc: ['body', 'inputs', 'text'], msg: 'Field required', type: 'missing' }]);
    });

    it('says "exactly one of" for text/texts, checks items by index, and applies the builtin\'s own rules', () => {
      const e5 = catalog.get('text_extractor_v1')!;
      const none = thrown(() => catalog.validate(e5, {}, {})) as RequestValidationError;
      expect(none.items).toEqual([{ loc: ['body', 'inputs'], msg: 'Exactly one of text, texts is required', type: 'value_error' }]);
      const both = thrown(() => catalog.validate(e5, { text: 'a', texts: ['b'] }, {})) as RequestValidationError;
      expect(both.items[0].msg).toBe('Give only one of text, texts');
      const item = thrown(() => catalog.validate(e5, { texts: ['a', ''] }, {})) as RequestValidationError;
      expect(item.items).toEqual([{ loc: ['body', 'inputs', 'texts', 1], msg: 'String should have at least 1 character', type: 'string_too_short' }]);
      const param = thrown(() => catalog.validate(e5, { text: 'a' }, { input_type: 'doc' })) as RequestValidationError;
      expect(param.items).toEqual([{ loc: ['body', 'parameters', 'input_type'], msg: 'Input should be "query", "passage"', type: 'enum' }]);
      const conflict = thrown(() => catalog.validate(e5, { text: 'a' }, { input_type: 'passage', task: 'x' })) as RequestValidationError;
      expect(conflict.items[0]).toMatchObject({ loc: ['body', 'parameters', 'task'], type: 'value_error' });
    });

    it('says the builtin needs E5_BASE_URL until it is set, and lists every plugin', () => {
      const e5 = catalog.get('text_extractor_v1')!;
      expect(catalog.unavailable(e5)).toMatchObject({ status: 503, type: 'InferenceServiceUnavailableError', code: 'plugin_not_configured' });
      expect(catalog.unavailable(e5)!.message).toContain('set E5_BASE_URL');
      const configured = PluginCatalog.load(loadConfig({ E5_BASE_URL: 'http://127.0.0.1:1' }));
      expect(configured.unavailable(configured.get('text_extractor_v1')!)).toBeUndefined();
      expect(configured.list()).toHaveLength(1);

      const listed = catalog.describe();
      const hash = listed.find((p) => p.name === 'hash_text_embedder')!;
      expect(hash).toMatchObject({
        inference_name: 'hash_text_embedder_1_0_0',
        builtin: false,
        available: true,
        outputs: [{ feature_name: 'embedding', feature_uri: 'mixpeek://hash_text_embedder@1.0.0/embedding', embedding_dim: 256, distance_metric: 'cosine' }],
        timeout_ms: 30000,
        concurrency: 2,
      });
      expect(hash.inputs).toMatchObject({ type: 'object', oneOf: [{ required: ['text'] }, { required: ['texts'] }] });
      expect(listed.find((p) => p.builtin)).toMatchObject({ available: false, unavailable_reason: expect.stringContaining('E5_BASE_URL') });
    });
  });
});
