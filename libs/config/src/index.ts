export * from './gateway-config';
export * from './load-config';
export * from './config.module';
export * from './log-levels';
export * from './rate-limits';
