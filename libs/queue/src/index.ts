export * from './redis-keys';
export * from './redis-connection';
export * from './blob-store';
export * from './retry-policy';
export * from './job-options';
export * from './queue.tokens';
export * from './queue.module';
export * from './startup';
