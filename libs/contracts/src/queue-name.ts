/**
 * The one list of queues. Nothing else spells a queue name as a string literal.
 * A queue per provider, so that a deployment can scale workers per provider and a slow or
 * rate-limited provider never holds up the others.
 */
export enum QueueName {
  OpenAI = 'openai',
  Anthropic = 'anthropic',
  Google = 'google',
  Plugins = 'plugins',
}

export const ALL_QUEUES: readonly QueueName[] = Object.values(QueueName);

/** Providers a client may name in `provider`; each is served by the queue of the same name. */
export enum Provider {
  OpenAI = 'openai',
  Google = 'google',
  Anthropic = 'anthropic',
}

export const ALL_PROVIDERS: readonly Provider[] = Object.values(Provider);

export function queueForProvider(provider: Provider): QueueName {
  switch (provider) {
    case Provider.OpenAI:
      return QueueName.OpenAI;
    case Provider.Google:
      return QueueName.Google;
    case Provider.Anthropic:
      return QueueName.Anthropic;
  }
}

export function isQueueName(value: string): value is QueueName {
  return (ALL_QUEUES as readonly string[]).includes(value);
}

export function isProvider(value: string): value is Provider {
  return (ALL_PROVIDERS as readonly string[]).includes(value);
}
