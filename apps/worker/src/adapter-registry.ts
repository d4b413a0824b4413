import { Inject, Injectable } from '@nestjs/common';
import { Provider, QueueName, queueForProvider } from '@lib/contracts';
import { GATEWAY_CONFIG, GatewayConfig } from '@lib/config';
import { AnthropicAdapter, InferenceAdapter, OpenAIAdapter } from '@lib/providers';

/** The adapters this worker can run: one per provider whose configuration is present. */
@Injectable()
export class AdapterRegistry {
  private readonly adapters = new Map<Provider, InferenceAdapter>();

  constructor(@Inject(GATEWAY_CONFIG) config: GatewayConfig) {
    if (config.openai.apiKey || config.openai.baseUrl) {
      this.adapters.set(
        Provider.OpenAI,
        new OpenAIAdapter({ apiKey: config.openai.apiKey, baseUrl: config.openai.baseUrl, timeoutMs: config.providerTimeoutMs }),
      );
    }
    if (config.anthropic.apiKey || config.anthropic.baseUrl) {
      this.adapters.set(
        Provider.Anthropic,
        new AnthropicAdapter({ apiKey: config.anthropic.apiKey, baseUrl: config.anthropic.baseUrl, timeoutMs: config.providerTimeoutMs }),
      );
    }
  }

  get(provider: Provider): InferenceAdapter | undefined {
    return this.adapters.get(provider);
  }

  /** Queues this worker has a processor and a configured adapter for. */
  servableQueues(): QueueName[] {
    return [...this.adapters.keys()].map(queueForProvider);
  }
}
