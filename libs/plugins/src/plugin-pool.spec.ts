import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { GatewayError } from '@lib/contracts';
import { eventually } from '../../../test/support/gateway-harness';
import { FIXTURE_CODE, PluginFixtures, processAlive } from '../../../test/support/plugin-fixtures';
import { loadPluginFolder } from './plugin-loader';
import { PluginDefinition } from './plugin-manifest';
import { pluginData, pluginFailure } from './plugin-outcome';
import { PluginPool, PluginTimeoutError } from './plugin-pool';
import { PluginCallError, PluginCallHooks, PluginLog } from './plugin-process';

const lines: string[] = [];
const log: PluginLog = { debug: (m) => lines.push(`debug ${m}`), log: (m) => lines.push(`log ${m}`), warn: (m) => lines.push(`warn ${m}`), error: (m) => lines.push(`error ${m}`) };
const noMedia: PluginCallHooks = { media: () => Promise.reject(new Error('no media in this test')) };

describe('PluginPool: plugins in child processes', () => {
  const fx = new PluginFixtures();
  const pools: PluginPool[] = [];
  let plugins: Map<string, PluginDefinition>;

  beforeAll(() => {
    fx.copyExample('hash_text_embedder');
    fx.add('echo', { env: ['GW_TEST_PLUGIN_VAR'] }, FIXTURE_CODE.echo);
    fx.add('thrower', {}, FIXTURE_CODE.thrower);
    fx.add('crasher', {}, FIXTURE_CODE.crasher);
    // One slot: a call after a timeout waits for the first to settle, and so can reuse its process.
    fx.add('hanger', { timeout_ms: 300, concurrency: 1 }, FIXTURE_CODE.hanger(fx.file('hanger.pid')));
    fx.add('syntax_error', {}, 'exports.infer = async () => {');
    fx.add('no_infer', {}, 'exports.predict = async () => ({})');
    fx.add('typed', {}, 'export async function infer(inputs: { text: string }): Promise<{ upper: string }> { return { upper: inputs.text.toUpperCase() }; }', 'index.ts');
    fx.add('esm', {}, 'export async function infer(inputs) { return { esm: true, text: inputs.text }; }', 'index.mjs');
    writeFileSync(`${fx.add('esm_js', {}, 'export default { infer: async () => ({ esm_js: true }) };')}/package.json`, '{"type": "module"}');
    fx.add('media', { inputs: { type: 'object' } }, `
      exports.infer = async (inputs, parameters, context) => {
        const got = await context.media.bytes('image_base64');
        const file = await context.media.file('image_base64');
        context.progress(0.25); context.progress(7);
        return { is_buffer: Buffer.isBuffer(got.data), bytes: got.data.length, mime: got.mime, file_size: require('node:fs').statSync(file.path).size };
      };`);
    fx.add('gated', { concurrency: 1, timeout_ms: 20000 }, `
      const fs = require('node:fs');
      exports.infer = async (inputs) => {
        fs.writeFileSync(${JSON.stringify(fx.file('started-'))} + inputs.text, String(process.pid));
        while (!fs.existsSync(${JSON.stringify(fx.file('open'))})) await new Promise((r) => setTimeout(r, 10));
        return { n: inputs.text, pid: process.pid };
      };`);
    const loaded = loadPluginFolder(fx.dir, { timeoutMs: 10_000, concurrency: 2 });
    expect(loaded.broken).toEqual([]);
    plugins = new Map(loaded.plugins.map((p) => [p.name, p]));
  });
  afterAll(() => {
    for (const pool of pools) pool.close();
    fx.remove();
  });

  function pool(name: string, killGraceMs = 100): PluginPool {
    const p = new PluginPool(plugins.get(name)!, { killGraceMs, log });
    pools.push(p);
    return p;
  }
  const run = (p: PluginPool, text: string, extra: Partial<Parameters<PluginPool['run']>[0]> = {}) =>
    p.run({ inputs: { text }, parameters: {}, signal: new AbortController().signal, hooks: noMedia, ...extra });

  it('runs the example plugin and keeps its process warm between calls', async () => {
    const hash = pool('hash_text_embedder');
    const json = await hash.run({ inputs: { texts: ['colour', 'color'] }, parameters: { min_n: 3, max_n: 5, lowercase: true }, signal: new AbortController().signal, hooks: noMedia });
    const data = pluginData(plugins.get('hash_text_embedder')!, plugins.get('hash_text_embedder')!.outputs[0], json);
    const [a, b] = data.embeddings as number[][];
    expect(data.dimensions).toBe(256);
    expect(a).toHaveLength(256);
    expect(a.reduce((s, x) => s + x * x, 0)).toBeCloseTo(1, 6);
    expect(a.reduce((s, x, i) => s + x * b[i], 0)).toBeGreaterThan(0.3);
    expect(hash.size).toBe(1);

    const echo = pool('echo');
    const first = JSON.parse((await run(echo, 'one'))!);
    const second = JSON.parse((await run(echo, 'two'))!);
    expect(second.pid).toBe(first.pid);
    expect(first).toMatchObject({ inputs: { text: 'one' }, plugin: 'echo@1.0.0' });
    expect(lines).toContain(`log plugin echo@1.0.0 (pid ${first.pid}): echo got one`);
  });

  it('gives the plugin only a minimal environment plus the variables its manifest names', async () => {
    process.env.GW_TEST_PLUGIN_VAR = 'visible';
    process.env.OPENAI_API_KEY = 'sk-should-not-leak';
    try {
      const echo = pool('echo');
      const out = JSON.parse((await run(echo, 'env'))!);
      expect(out).toMatchObject({ sees_openai_key: false, allowed_env: 'visible' });
    } finally {
      delete process.env.GW_TEST_PLUGIN_VAR;
      delete process.env.OPENAI_API_KEY;
    }
  });

  it('a plugin that throws fails the call with its error; its process lives on', async () => {
    const p = pool('thrower');
    const err = (await run(p, 'x').catch((e: unknown) => e)) as PluginCallError;
    expect(err).toBeInstanceOf(PluginCallError);
    expect(err.failure).toEqual({ kind: 'threw', error: { name: 'TypeError', message: 'model exploded on x' } });
    const mapped = pluginFailure(plugins.get('thrower')!, err) as GatewayError;
    expect(mapped).toMatchObject({ status: 500, code: 'plugin_failed', message: 'Plugin thrower@1.0.0 failed: TypeError: model exploded on x' });
    expect(p.size).toBe(1);

    const rejected = pluginFailure(plugins.get('thrower')!, await run(p, 'bad-input').catch((e: unknown) => e)) as GatewayError;
    expect(rejected).toMatchObject({ status: 400, code: 'plugin_rejected_input', details: { plugin: 'thrower@1.0.0', plugin_status: 400 } });
    const retry = pluginFailure(plugins.get('thrower')!, await run(p, 'busy').catch((e: unknown) => e));
    expect(retry).not.toBeInstanceOf(GatewayError);
    expect(retry).toMatchObject({ status: 503, message: 'thrower@1.0.0: Error: model server busy' });
    const secret = pluginFailure(plugins.get('thrower')!, await run(p, 'secret').catch((e: unknown) => e));
    expect(secret.message).not.toContain('1234567890');
  });

  it.each([
    ['exit', { exitCode: 3, signal: null }, 'exited with code 3'],
    ['kill', { exitCode: null, signal: 'SIGKILL' }, 'was killed by SIGKILL'],
    ['uncaught', { exitCode: 70, fatal: 'crasher@1.0.0: uncaught Error: boom from a timer' }, 'boom from a timer'],
  ])('a plugin that ends its process (%s) fails the call as crashed; the next call gets a new process', async (mode, failure, message) => {
    const p = pool('crasher');
    const before = JSON.parse((await run(p, 'hello'))!).pid as number;
    const err = (await run(p, mode).catch((e: unknown) => e)) as PluginCallError;
    expect(err.failure).toMatchObject({ kind: 'crashed', ...failure });
    expect(pluginFailure(plugins.get('crasher')!, err)).toMatchObject({ status: 500, code: 'plugin_crashed', message: expect.stringContaining(message) });
    await eventually(() => p.size === 0, 5000, 'the dead process to leave the pool');
    const after = JSON.parse((await run(p, 'hello'))!).pid as number;
    expect(after).not.toBe(before);
    expect(processAlive(before)).toBe(false);
  });

  it.each(['wait', 'spin'])('a hanging plugin (%s) times out and its process is killed after the grace time', async (mode) => {
    const p = pool('hanger', 50);
    const err = await run(p, mode).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PluginTimeoutError);
    expect(pluginFailure(plugins.get('hanger')!, err)).toMatchObject({ status: 504, code: 'plugin_timeout', message: expect.stringContaining('within its timeout of 300 ms') });
    const pid = Number(readFileSync(fx.file('hanger.pid'), 'utf8'));
    await eventually(() => !processAlive(pid), 5000, `hung plugin process ${pid} to be killed`);
    expect(p.size).toBe(0);
  });

  it('a timed-out plugin that honours its abort signal keeps its process', async () => {
    const p = pool('hanger', 5000);
    await expect(run(p, 'polite')).rejects.toBeInstanceOf(PluginTimeoutError);
    const pid = Number(readFileSync(fx.file('hanger.pid'), 'utf8'));
    await expect(run(p, 'polite')).rejects.toBeInstanceOf(PluginTimeoutError);
    expect(Number(readFileSync(fx.file('hanger.pid'), 'utf8'))).toBe(pid);
    expect(processAlive(pid)).toBe(true);
  });

  it('canceling the job aborts the call at once', async () => {
    const p = pool('hanger', 50);
    const controller = new AbortController();
    rmSync(fx.file('hanger.pid'), { force: true });
    const call = run(p, 'wait', { signal: controller.signal });
    await eventually(() => existsSync(fx.file('hanger.pid')));
    controller.abort('canceled');
    await expect(call).rejects.toBe('canceled');
  });

  it('reports modules that do not load, or export no infer', async () => {
    const syntax = (await run(pool('syntax_error'), 'x').catch((e: unknown) => e)) as PluginCallError;
    expect(syntax.failure).toMatchObject({ kind: 'load', message: expect.stringContaining('SyntaxError') });
    expect(pluginFailure(plugins.get('syntax_error')!, syntax)).toMatchObject({ code: 'plugin_load_failed', message: expect.stringContaining('Plugin syntax_error@1.0.0 could not be loaded') });
    const noInfer = (await pool('no_infer').warm().catch((e: unknown) => e)) as PluginCallError;
    expect(noInfer.failure).toMatchObject({ kind: 'load', message: expect.stringContaining('exports no infer function') });
  });

  it('loads TypeScript and ES module entries (.mjs, and .js in a "type": "module" package)', async () => {
    expect(JSON.parse((await run(pool('typed'), 'abc'))!)).toEqual({ upper: 'ABC' });
    expect(JSON.parse((await run(pool('esm'), 'abc'))!)).toEqual({ esm: true, text: 'abc' });
    expect(JSON.parse((await run(pool('esm_js'), 'abc'))!)).toEqual({ esm_js: true });
  });

  it('hands media to the plugin through the worker, and its progress back', async () => {
    const progress: number[] = [];
    const asked: string[] = [];
    const hooks: PluginCallHooks = {
      media: async (kind, input) => {
        asked.push(`${kind}:${input}`);
        return kind === 'bytes' ? { data: Buffer.from('png-bytes'), mime: 'image/png' } : { path: fx.file('hanger.pid'), size: 1, mime: 'x', ext: 'bin' };
      },
      progress: (v) => progress.push(v),
    };
    writeFileSync(fx.file('hanger.pid'), '12345');
    const out = JSON.parse((await pool('media').run({ inputs: {}, parameters: {}, signal: new AbortController().signal, hooks }))!);
    expect(out).toEqual({ is_buffer: true, bytes: 9, mime: 'image/png', file_size: 5 });
    expect(asked).toEqual(['bytes:image_base64', 'file:image_base64']);
    expect(progress).toEqual([0.25, 1]);
  });

  it('runs at most `concurrency` calls at once, one per process', async () => {
    const p = pool('gated');
    const first = run(p, '1');
    const second = run(p, '2');
    await eventually(() => existsSync(fx.file('started-1')) || existsSync(fx.file('started-2')), 10_000, 'a call to start');
    // One slot: the other call waits for it and has not reached the plugin.
    expect(existsSync(fx.file('started-1')) && existsSync(fx.file('started-2'))).toBe(false);
    expect(p.size).toBe(1);
    writeFileSync(fx.file('open'), '');
    const [a, b] = (await Promise.all([first, second])).map((j) => JSON.parse(j!));
    expect(a.pid).toBe(b.pid);
    expect(existsSync(fx.file('started-2'))).toBe(true);
  });
});

describe('pluginData', () => {
  const fx = new PluginFixtures();
  let plugin: PluginDefinition;
  beforeAll(() => {
    fx.add('vec', { outputs: [{ feature_name: 'v', feature_type: 'embedding', embedding_dim: 3 }] }, 'exports.infer = async () => ({})');
    plugin = loadPluginFolder(fx.dir, { timeoutMs: 1000, concurrency: 1 }).plugins[0];
  });
  afterAll(() => fx.remove());

  it('accepts objects, and refuses anything else or embeddings of the wrong size, naming the plugin', () => {
    expect(pluginData(plugin, plugin.outputs[0], '{"embedding":[1,2,3],"dimensions":3}')).toEqual({ embedding: [1, 2, 3], dimensions: 3 });
    for (const [json, what] of [
      [undefined, 'returned nothing (undefined)'],
      ['[1]', 'returned an array'],
      ['"x"', 'returned a string'],
      ['null', 'returned null'],
      ['{"embedding":[1,2]}', 'returned an embedding of 2 values; output v is declared with embedding_dim 3'],
      ['{"embeddings":[[1,2,3],[1]]}', 'returned an embedding of 1 values'],
    ] as const) {
      expect(() => pluginData(plugin, plugin.outputs[0], json)).toThrow(expect.objectContaining({ code: 'plugin_invalid_output', message: expect.stringContaining(`Plugin vec@1.0.0 ${what}`) }));
    }
    expect(pluginData(plugin, undefined, '{"embedding":[1]}')).toEqual({ embedding: [1] });
  });
});
