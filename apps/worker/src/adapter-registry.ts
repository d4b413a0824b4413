import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import { PLUGIN_PROVIDER, Provider, QueueName, queueForProvider, RequestProvider } from '@lib/contracts';
import { GATEWAY_CONFIG, GatewayConfig } from '@lib/config';
import { AnthropicAdapter, configuredProviders, GoogleAdapter, InferenceAdapter, OpenAIAdapter } from '@lib/providers';
import { PluginCatalog } from '@lib/plugins';
import { PluginAdapter } from './plugin.adapter';
import { WORKER_QUEUES } from './worker.tokens';

/** How each provider's adapter is built from the configuration. */
const FACTORIES: Record<Provider, (config: GatewayConfig) => InferenceAdapter> = {
  [Provider.OpenAI]: (c) => new OpenAIAdapter({ apiKey: c.openai.apiKey, baseUrl: c.openai.baseUrl, timeoutMs: c.providerTimeoutMs }),
  [Provider.Anthropic]: (c) => new AnthropicAdapter({ apiKey: c.anthropic.apiKey, baseUrl: c.anthropic.baseUrl, timeoutMs: c.providerTimeoutMs }),
  [Provider.Google]: (c) =>
    new GoogleAdapter({
      project: c.google.project,
      location: c.google.location,
      vertexBaseUrl: c.google.vertexBaseUrl,
      vertexAuth: c.google.vertexAuth,
      timeoutMs: c.providerTimeoutMs,
    }),
};

/** The plugins queue has work when custom plugins or the builtin E5 extractor are set up. */
function pluginsConfigured(config: GatewayConfig): boolean {
  return Boolean(config.pluginsDir || config.e5.baseUrl);
}

/** The adapters this worker can run: one per provider whose configuration is present, and the plugins'. */
@Injectable()
export class AdapterRegistry implements OnApplicationShutdown {
  private readonly adapters = new Map<Provider, InferenceAdapter>();
  /** Built only by a worker that serves the plugins queue: it forks plugin processes. */
  readonly plugins?: PluginAdapter;

  constructor(@Inject(GATEWAY_CONFIG) config: GatewayConfig, @Inject(WORKER_QUEUES) queues: QueueName[]) {
    for (const provider of configuredProviders(config)) this.adapters.set(provider, FACTORIES[provider](config));
    if (queues.includes(QueueName.Plugins)) {
      this.plugins = new PluginAdapter(PluginCatalog.load(config), config);
      void this.plugins.warm();
    }
  }

  /** Queues a worker with this configuration can serve (no adapter is built to answer). */
  static servableQueues(config: GatewayConfig): QueueName[] {
    const queues = configuredProviders(config).map(queueForProvider);
    return pluginsConfigured(config) ? [...queues, QueueName.Plugins] : queues;
  }

  get(provider: RequestProvider): Pick<InferenceAdapter, 'run'> | undefined {
    return provider === PLUGIN_PROVIDER ? this.plugins : this.adapters.get(provider);
  }

  /** Adapters holding connections (the Vertex client) or processes (plugins) release them here. */
  async onApplicationShutdown(): Promise<void> {
    for (const adapter of this.adapters.values()) await adapter.close?.().catch(() => undefined);
    await this.plugins?.close();
  }
}
