import { PLUGIN_PROVIDER, Task } from '@lib/contracts';
import { loadConfig } from '@lib/config';
import { PluginCatalog } from '@lib/plugins';
import { PluginAdapter } from './plugin.adapter';

describe('PluginAdapter', () => {
  it('fails a job for a plugin this worker has not loaded with 503 plugin_not_loaded', async () => {
    const config = loadConfig({});
    const adapter = new PluginAdapter(PluginCatalog.load(config), config);
    const request = {
      provider: PLUGIN_PROVIDER,
      model: 'elsewhere_1_0_0',
      task: Task.Plugin,
      inputs: { text: 'x' },
      parameters: {},
      plugin: { inferenceName: 'elsewhere_1_0_0', name: 'elsewhere', version: '1.0.0' },
    } as const;
    const media = { bytes: () => Promise.reject(new Error('none')), file: () => Promise.reject(new Error('none')) };
    await expect(adapter.run({ ...request, inputs: { ...request.inputs }, parameters: {} }, { signal: new AbortController().signal, media })).rejects.toMatchObject({
      status: 503,
      code: 'plugin_not_loaded',
      message: expect.stringContaining('must read the same PLUGINS_DIR'),
    });
    await adapter.close();
  });
});
