import { ALL_PROVIDERS, ErrorType, GatewayError, isProvider, Provider, queueForProvider, QueueName } from '@lib/contracts';
import { GatewayConfig } from '@lib/config';
import { TaskSpec } from './task-inputs';
import { openaiTaskSpec } from './openai/openai.tasks';
import { anthropicTaskSpec } from './anthropic/anthropic.tasks';
import { googleTaskSpec } from './google/google.tasks';

/**
 * What the API knows about each provider without loading an SDK: whether it is configured,
 * which queue serves it, and which task a model + inputs ask for.
 */
export interface ProviderEntry {
  provider: Provider;
  queue: QueueName;
  /** How the operator enables it. */
  configureHint: string;
  isConfigured(config: GatewayConfig): boolean;
  /** The task a model asks for, with the inputs and parameters that task takes. */
  taskSpec: (model: string) => TaskSpec;
}

const CATALOG: Record<Provider, ProviderEntry> = {
  [Provider.OpenAI]: {
    provider: Provider.OpenAI,
    queue: queueForProvider(Provider.OpenAI),
    configureHint: 'set OPENAI_API_KEY (and OPENAI_BASE_URL for an OpenAI-compatible server)',
    isConfigured: (c) => Boolean(c.openai.apiKey || c.openai.baseUrl),
    taskSpec: openaiTaskSpec,
  },
  [Provider.Anthropic]: {
    provider: Provider.Anthropic,
    queue: queueForProvider(Provider.Anthropic),
    configureHint: 'set ANTHROPIC_API_KEY',
    isConfigured: (c) => Boolean(c.anthropic.apiKey || c.anthropic.baseUrl),
    taskSpec: anthropicTaskSpec,
  },
  [Provider.Google]: {
    provider: Provider.Google,
    queue: queueForProvider(Provider.Google),
    configureHint: 'set GOOGLE_CLOUD_PROJECT (and Application Default Credentials) or GOOGLE_VERTEX_BASE_URL',
    isConfigured: (c) => Boolean(c.google.project || c.google.vertexBaseUrl),
    taskSpec: googleTaskSpec,
  },
};

/** Finds a usable provider or throws the 400 that tells the client why it cannot be used. */
export function providerFor(name: string, config: GatewayConfig): ProviderEntry {
  const key = name.trim().toLowerCase();
  if (!isProvider(key)) {
    throw new GatewayError(ErrorType.BadRequest, `Unknown provider "${name}"; known providers: ${ALL_PROVIDERS.join(', ')}`, 'unknown_provider', {
      provider: name,
      known_providers: [...ALL_PROVIDERS],
    });
  }
  const entry = CATALOG[key];
  if (!entry.isConfigured(config)) {
    throw new GatewayError(
      ErrorType.BadRequest,
      `Provider "${key}" is not configured on this gateway; the operator must ${entry.configureHint}`,
      'provider_not_configured',
      { provider: key },
    );
  }
  return entry;
}

/** Providers whose configuration is present. */
export function configuredProviders(config: GatewayConfig): Provider[] {
  return Object.values(CATALOG)
    .filter((entry) => entry.isConfigured(config))
    .map((entry) => entry.provider);
}
