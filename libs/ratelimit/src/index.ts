export * from './client-limiter';
export * from './provider-limiter';
export * from './token-estimate';
