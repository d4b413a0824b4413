/**
 * The IPC messages between a worker and a plugin's child process (Node's advanced
 * serialization, so Buffers cross as Buffers). Types only: the child imports nothing else.
 */

/** Sent once, first: which module to load. */
export interface InitMessage {
  type: 'init';
  name: string;
  version: string;
  entry: string;
  /** Path of the `typescript` package, for `.ts` entries (absent: TypeScript entries cannot load). */
  typescript?: string;
}

export interface RunMessage {
  type: 'run';
  id: number;
  inputs: Record<string, unknown>;
  parameters: Record<string, unknown>;
  /** The output the request asked for (feature URI), if any. */
  output?: string;
}

/** Fires the call's abort signal; the worker kills the process if the call does not settle. */
export interface AbortMessage {
  type: 'abort';
  id: number;
  reason: 'timeout' | 'canceled';
}

export interface MediaReplyMessage {
  type: 'media_reply';
  requestId: number;
  value?: unknown;
  error?: { message: string; code?: string };
}

export type ParentMessage = InitMessage | RunMessage | AbortMessage | MediaReplyMessage;

export interface ReadyMessage {
  type: 'ready';
}

/** The module did not load or exports no `infer`; the child exits after sending it. */
export interface LoadErrorMessage {
  type: 'load_error';
  message: string;
}

/** `json` is the result as JSON text (undefined when the plugin returned undefined). */
export interface ResultMessage {
  type: 'result';
  id: number;
  json?: string;
}

export interface ThrownError {
  name: string;
  message: string;
  /** An HTTP-like status the plugin put on its error (4xx: the input was refused; 429/5xx: retry). */
  status?: number;
  code?: string;
  /** The plugin asks for a retry. */
  retryable?: boolean;
}

export interface ErrorMessage {
  type: 'error';
  id: number;
  error: ThrownError;
}

export interface LogMessage {
  type: 'log';
  id?: number;
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
}

export interface ProgressMessage {
  type: 'progress';
  id: number;
  /** 0..1 */
  value: number;
}

/** The plugin asks for one of the job's media inputs, fetched or decoded by the worker. */
export interface MediaRequestMessage {
  type: 'media';
  id: number;
  requestId: number;
  kind: 'bytes' | 'file';
  input: string;
}

/** An uncaught exception or unhandled rejection; the child exits after sending it. */
export interface FatalMessage {
  type: 'fatal';
  message: string;
}

export type ChildMessage = ReadyMessage | LoadErrorMessage | ResultMessage | ErrorMessage | LogMessage | ProgressMessage | MediaRequestMessage | FatalMessage;
