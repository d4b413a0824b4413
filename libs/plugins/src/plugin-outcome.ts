import { ErrorType, GatewayError } from '@lib/contracts';
import { redactSecrets } from '@lib/providers';
import type { PluginDefinition, PluginOutput } from './plugin-manifest';
import { PluginCallError } from './plugin-process';
import { PluginTimeoutError } from './plugin-pool';

/** Messages from plugin code are cut to this many characters before they reach a client. */
const MAX_MESSAGE = 1000;

/**
 * The plugin's answer as the job's `data`: it must be a JSON object, and an `embedding` /
 * `embeddings` it returns for an embedding output must have the output's `embedding_dim`.
 */
export function pluginData(plugin: PluginDefinition, output: PluginOutput | undefined, json: string | undefined): Record<string, unknown> {
  const value: unknown = json === undefined ? undefined : JSON.parse(json);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    const what = value === undefined ? 'nothing (undefined)' : value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
    throw invalidOutput(plugin, `returned ${what}; infer() must return an object, which becomes the response's data`);
  }
  const data = value as Record<string, unknown>;
  const dim = output?.feature_type === 'embedding' ? output.embedding_dim : undefined;
  if (dim !== undefined) {
    const vectors = Array.isArray(data.embeddings) ? data.embeddings : data.embedding !== undefined ? [data.embedding] : [];
    const bad = vectors.findIndex((v) => !Array.isArray(v) || v.length !== dim || !v.every((x) => typeof x === 'number'));
    if (bad !== -1) {
      const v = vectors[bad];
      const got = Array.isArray(v) ? `${v.length} values` : typeof v;
      throw invalidOutput(plugin, `returned an embedding of ${got}; output ${output!.feature_name} is declared with embedding_dim ${dim}`);
    }
  }
  return data;
}

function invalidOutput(plugin: PluginDefinition, what: string): GatewayError {
  return new GatewayError(ErrorType.Internal, `Plugin ${labelOf(plugin)} ${what}`, 'plugin_invalid_output', { plugin: labelOf(plugin) });
}

/**
 * A failed plugin call as the error the worker's processor understands: a GatewayError is
 * final; an SDK-like error with a status is classified like a provider's (a plugin asks for a
 * retry by throwing an error with `retryable: true` or a 429/5xx `status`).
 */
export function pluginFailure(plugin: PluginDefinition, err: unknown): Error {
  const label = labelOf(plugin);
  const details = { plugin: label };
  if (err instanceof PluginTimeoutError) {
    return new GatewayError(ErrorType.Timeout, `Plugin ${label} did not finish within its timeout of ${err.timeoutMs} ms; the call was stopped`, 'plugin_timeout', details);
  }
  if (!(err instanceof PluginCallError)) return err as Error;
  const failure = err.failure;
  switch (failure.kind) {
    case 'load':
      return new GatewayError(ErrorType.Internal, `Plugin ${label} could not be loaded: ${cut(failure.message)}`, 'plugin_load_failed', details);
    case 'crashed': {
      const how = failure.signal ? `was killed by ${failure.signal}` : `exited with code ${failure.exitCode}`;
      const why = failure.fatal ? ` (${cut(failure.fatal)})` : '';
      return new GatewayError(ErrorType.Internal, `Plugin ${label} crashed: its process ${how} while running this request${why}`, 'plugin_crashed', details);
    }
    case 'threw': {
      const { name, message, status, retryable } = failure.error;
      const text = `${label}: ${name}: ${cut(message)}`;
      if (retryable || (status !== undefined && (status === 408 || status === 429 || status >= 500))) {
        // Shaped like an SDK error, so the shared classifier retries it with backoff.
        return Object.assign(new Error(text), { status: status !== undefined && status >= 400 ? status : 503 });
      }
      if (status !== undefined && status >= 400 && status < 500) {
        return new GatewayError(ErrorType.BadRequest, `Plugin ${label} rejected the input: ${cut(message)}`, 'plugin_rejected_input', { ...details, plugin_status: status });
      }
      return new GatewayError(ErrorType.Internal, `Plugin ${label} failed: ${name}: ${cut(message)}`, 'plugin_failed', details);
    }
  }
}

export function labelOf(plugin: PluginDefinition): string {
  return `${plugin.name}@${plugin.version}`;
}

/** Plugin text reaches clients: cut short, and anything that looks like a credential masked. */
function cut(text: string): string {
  const safe = redactSecrets(text);
  return safe.length > MAX_MESSAGE ? `${safe.slice(0, MAX_MESSAGE)}...` : safe;
}
