/** Injection token of the shared ioredis client (queues, blobs, publishes): a RedisClient, a Cluster with REDIS_CLUSTER_NODES. */
export const REDIS = Symbol('REDIS');
