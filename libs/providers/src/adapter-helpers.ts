import { ErrorType, GatewayError } from '@lib/contracts';
import { MediaBytes, AdapterContext } from './inference-adapter';

/** The image inputs a chat request may carry, in the order they are sent. */
export const IMAGE_INPUTS = ['image_url', 'image_base64'] as const;

/** A copy of `source` without `keys`: the parameters the gateway consumes itself. */
export function omit(source: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(source)) if (!keys.includes(k)) out[k] = v;
  return out;
}

/**
 * The images of a chat request as bytes (the worker downloads URLs), each checked against the
 * media types the provider takes: anything else is a 400 before the provider is called.
 */
export async function loadImages(
  inputs: Record<string, unknown>,
  ctx: AdapterContext,
  accepted: readonly string[],
  provider: string,
): Promise<MediaBytes[]> {
  const images: MediaBytes[] = [];
  for (const name of IMAGE_INPUTS) {
    if (inputs[name] == null) continue;
    const image = await ctx.media.bytes(name);
    if (!accepted.includes(image.mime)) {
      throw new GatewayError(
        ErrorType.BadRequest,
        `inputs.${name} is not an image ${provider} accepts (${accepted.map((m) => m.replace('image/', '')).join(', ')})`,
        'unsupported_media_type',
        { detected: image.mime },
      );
    }
    images.push(image);
  }
  return images;
}

/** The image types every chat provider here accepts. */
export const CHAT_IMAGE_TYPES = ['image/jpeg', 'image/png', 'image/gif', 'image/webp'] as const;

/** A provider call outlived PROVIDER_TIMEOUT_MS (classified as `provider_timeout`, retryable). */
export class ProviderTimeoutError extends Error {
  constructor(timeoutMs: number) {
    super(`no answer within ${timeoutMs} ms`);
    this.name = 'ProviderTimeoutError';
  }
}

/**
 * One SDK call under the job's abort signal and our own timeout. The SDKs' own timeouts
 * surface on Node 20 as a plain "Connection error." (their abort detection misses the fetch
 * AbortError), which would be retried as unreachable and never reported as a timeout; so the
 * SDK timeout is only a backstop and this one decides.
 */
export async function callWithTimeout<T>(signal: AbortSignal, timeoutMs: number, call: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const timeout = AbortSignal.timeout(timeoutMs);
  try {
    return await call(AbortSignal.any([signal, timeout]));
  } catch (err) {
    if (timeout.aborted && !signal.aborted) throw new ProviderTimeoutError(timeoutMs);
    throw err;
  }
}

/** The SDK's own timeout, left as a backstop behind callWithTimeout. */
export function backstopTimeout(timeoutMs: number): number {
  return timeoutMs + 5_000;
}
