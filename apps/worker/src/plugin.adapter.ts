import { Logger } from '@nestjs/common';
import { ErrorType, GatewayError, NormalizedRequest, PLUGIN_PROVIDER } from '@lib/contracts';
import { GatewayConfig } from '@lib/config';
import { AdapterContext, AdapterResult } from '@lib/providers';
import { labelOf, PluginCallError, PluginCatalog, pluginData, pluginFailure, PluginPool, TextExtractor } from '@lib/plugins';

/** Plugins report progress as a fraction (0..1) through `context.progress`; jobs show percent. */
type PluginAdapterContext = AdapterContext;

/**
 * The adapter of the plugins queue: the builtin text extractor runs here, in the worker (it is
 * the gateway's own HTTP client); every custom plugin runs in child processes of its own
 * (PluginPool), so a plugin that throws, hangs, exits or crashes fails its call with an error
 * naming it and never takes the worker down.
 */
export class PluginAdapter {
  readonly provider = PLUGIN_PROVIDER;
  private readonly logger = new Logger('Plugins');
  private readonly pools = new Map<string, PluginPool>();
  private readonly textExtractor: TextExtractor;

  constructor(
    private readonly catalog: PluginCatalog,
    config: GatewayConfig,
  ) {
    for (const broken of catalog.broken) this.logger.error(`plugin ${broken.name} (${broken.dir}) not loaded: ${broken.problems.join('; ')}`);
    for (const plugin of catalog.list()) {
      if (!plugin.builtin) this.pools.set(plugin.inferenceName, new PluginPool(plugin, { killGraceMs: config.pluginKillGraceMs, log: this.logger }));
    }
    this.textExtractor = new TextExtractor(config);
  }

  /** Loads every custom plugin once (one warm process each); a module that does not load is reported by name. */
  async warm(): Promise<void> {
    await Promise.all(
      [...this.pools.values()].map((pool) =>
        pool.warm().then(
          () => this.logger.log(`plugin ${labelOf(pool.plugin)} loaded (${pool.plugin.inferenceName})`),
          (err: unknown) => this.logger.error(`plugin ${labelOf(pool.plugin)} could not be loaded: ${err instanceof PluginCallError ? err.message : String(err)}`),
        ),
      ),
    );
  }

  /** The pool of a custom plugin (tests look at its processes). */
  pool(inferenceName: string): PluginPool | undefined {
    return this.pools.get(inferenceName);
  }

  async run(request: NormalizedRequest, ctx: PluginAdapterContext): Promise<AdapterResult> {
    const target = request.plugin;
    const plugin = target ? this.catalog.get(target.inferenceName) : undefined;
    if (!target || !plugin) {
      throw new GatewayError(
        ErrorType.ServiceUnavailable,
        `This worker has no plugin ${request.model} loaded: the API and the workers must read the same PLUGINS_DIR`,
        'plugin_not_loaded',
        { inference_name: request.model },
      );
    }
    if (plugin.builtin) return this.textExtractor.run(request.inputs, request.parameters, ctx.signal);

    const output = plugin.outputs.find((o) => o.feature_name === target.output) ?? (plugin.outputs.length === 1 ? plugin.outputs[0] : undefined);
    // A media input that could not be fetched is the client's problem (400), not the plugin's.
    let mediaError: unknown;
    try {
      const json = await this.pools.get(plugin.inferenceName)!.run({
        inputs: request.inputs,
        parameters: request.parameters,
        output: target.output,
        signal: ctx.signal,
        hooks: {
          media: async (kind, input) => {
            try {
              return kind === 'bytes' ? await ctx.media.bytes(input) : await ctx.media.file(input);
            } catch (err) {
              mediaError = err;
              throw err;
            }
          },
          progress: (value) => ctx.progress?.(Math.round(value * 100)),
        },
      });
      return { data: pluginData(plugin, output, json) };
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      if (mediaError && err instanceof PluginCallError && err.failure.kind === 'threw') throw mediaError;
      throw pluginFailure(plugin, err);
    }
  }

  async close(): Promise<void> {
    for (const pool of this.pools.values()) pool.close();
  }
}
