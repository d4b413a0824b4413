import { createHmac } from 'node:crypto';
import { promises as dns } from 'node:dns';
import type { LookupAddress, LookupOptions } from 'node:dns';
import * as http from 'node:http';
import * as https from 'node:https';
import { isIP } from 'node:net';
import { isForbiddenAddress } from '@lib/media';

/** One POST may take this long, connect to last byte (ms). */
const TIMEOUT_MS = 10_000;

/** `sha256=<hex HMAC-SHA256 of the raw body>`: what a receiver recomputes with the shared secret. */
export function signBody(body: string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** A callback that was refused or could not be delivered; `permanent` ones are not retried. */
export class WebhookError extends Error {
  constructor(
    message: string,
    readonly permanent: boolean,
  ) {
    super(message);
    this.name = 'WebhookError';
  }
}

/**
 * POSTs `body` (JSON) to `url`, signed in `X-Signature`. The host is resolved once and every
 * address judged by the media URL policy (no loopback, private, link-local or metadata address
 * unless `allowPrivate`); the connection uses exactly those addresses, so DNS cannot be switched
 * under it, and redirects are not followed. Resolves on a 2xx answer.
 */
export async function postSignedJson(url: string, body: string, secret: string, allowPrivate: boolean): Promise<number> {
  const target = new URL(url);
  const host = target.hostname.replace(/^\[|\]$/g, '');
  const addresses: LookupAddress[] = isIP(host) ? [{ address: host, family: isIP(host) }] : await dns.lookup(host, { all: true });
  if (!allowPrivate) {
    for (const { address } of addresses) {
      const reason = isForbiddenAddress(address);
      if (reason) throw new WebhookError(`callback host ${host} resolves to a ${reason} address; MEDIA_ALLOW_PRIVATE_URLS=true allows it`, true);
    }
  }
  const pinned = (_h: string, options: LookupOptions, cb: (err: null, address: string | LookupAddress[], family?: number) => void): void => {
    if (options?.all) cb(null, addresses);
    else cb(null, addresses[0].address, addresses[0].family);
  };
  const status = await new Promise<number>((resolve, reject) => {
    const req = (target.protocol === 'https:' ? https : http).request(
      {
        method: 'POST',
        hostname: host,
        port: target.port || undefined,
        path: `${target.pathname}${target.search}`,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'user-agent': 'inference-gateway-batch-callback/1.0',
          'x-signature': signBody(body, secret),
        },
        agent: false,
        timeout: TIMEOUT_MS,
        ...(isIP(host) ? {} : { lookup: pinned as never, servername: host }),
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end(body);
  });
  if (status < 200 || status >= 300) throw new WebhookError(`callback answered HTTP ${status}`, false);
  return status;
}
