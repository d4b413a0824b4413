export * from './client-limiter';
export * from './provider-limiter';
export * from './token-estimate';
export { FETCH_ADMIT_LUA, RESERVE_LUA } from './limiter-scripts';
