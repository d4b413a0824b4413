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
