/** Injection token of the queues this worker process serves. */
export const WORKER_QUEUES = Symbol('WORKER_QUEUES');
