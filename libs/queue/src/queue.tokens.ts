/** Injection token of the shared ioredis client (queues, blobs, publishes). */
export const REDIS = Symbol('REDIS');
