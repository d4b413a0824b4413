import { BlobRef } from '@lib/contracts';
import { RedisKeys } from './redis-keys';
import type { RedisClient } from './redis-connection';

/**
 * Large inline inputs live in their own Redis keys with a TTL, not in the job: BullMQ copies
 * job data into reads and events, and a 30 MB base64 string there would be copied each time.
 */
export class BlobStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly ttlSeconds: number,
  ) {}

  async put(jobId: string, input: string, bytes: Buffer): Promise<BlobRef> {
    const key = this.keys.blob(jobId, input);
    await this.redis.set(key, bytes, 'EX', this.ttlSeconds);
    return { $blob: key, bytes: bytes.length };
  }

  async get(ref: BlobRef): Promise<Buffer | null> {
    return this.redis.getBuffer(ref.$blob);
  }

  async delete(refs: BlobRef[]): Promise<void> {
    if (refs.length > 0) await this.redis.del(...refs.map((r) => r.$blob));
  }
}
