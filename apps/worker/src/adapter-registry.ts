import { Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import { Provider, QueueName, queueForProvider } from '@lib/contracts';
import { GATEWAY_CONFIG, GatewayConfig } from '@lib/config';
import { AnthropicAdapter, configuredProviders, GoogleAdapter, InferenceAdapter, OpenAIAdapter } from '@lib/providers';

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

/** The adapters this worker can run: one per provider whose configuration is present. */
@Injectable()
export class AdapterRegistry implements OnApplicationShutdown {
  private readonly adapters = new Map<Provider, InferenceAdapter>();

  constructor(@Inject(GATEWAY_CONFIG) config: GatewayConfig) {
    for (const provider of configuredProviders(config)) this.adapters.set(provider, FACTORIES[provider](config));
  }

  /** Queues a worker with this configuration can serve (no adapter is built to answer). */
  static servableQueues(config: GatewayConfig): QueueName[] {
    return configuredProviders(config).map(queueForProvider);
  }

  get(provider: Provider): InferenceAdapter | undefined {
    return this.adapters.get(provider);
  }

  /** Adapters holding connections (the Vertex client) release them here. */
  async onApplicationShutdown(): Promise<void> {
    for (const adapter of this.adapters.values()) await adapter.close?.().catch(() => undefined);
  }
}
