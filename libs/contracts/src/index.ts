export * from './queue-name';
export * from './task';
export * from './errors';
export * from './raw-inference';
export * from './job-status';
export * from './job-payloads';
export * from './raw-inference-request.dto';
