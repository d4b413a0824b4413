export * from './normal-quantile';
export * from './logistic-fit';
export * from './vcache-policy';
export * from './vector-index';
export * from './semantic-scope';
export * from './semantic-cache-store';
export * from './exact-cache';
export * from './result-store';
