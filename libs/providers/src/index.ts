export * from './inference-adapter';
export * from './provider-error';
export * from './provider-catalog';
export * from './task-inputs';
export * from './structured-output';
export * from './openai/openai.tasks';
export * from './openai/openai.adapter';
