import { ConsoleLogger, LoggerService } from '@nestjs/common';
import * as os from 'node:os';
import pino, { DestinationStream, Level, Logger } from 'pino';
import { GatewayConfig, logLevels } from '@lib/config';

/** LOG_LEVEL (Nest's names) -> pino's level. */
const PINO_LEVEL: Record<GatewayConfig['logLevel'], Level> = { error: 'error', warn: 'warn', log: 'info', debug: 'debug' };

/**
 * Field names that must never reach a log line, whatever object a caller logs by mistake.
 * Nothing logs headers or bodies on purpose; this is the second line of defence.
 */
const REDACTED_PATHS = [
  'authorization',
  'headers.authorization',
  '*.authorization',
  'apiKey',
  'api_key',
  '*.apiKey',
  '*.api_key',
  'apiKeys',
  '*.apiKeys',
];

/**
 * Nest's LoggerService over pino: one JSON line per event. A message may be a string, an Error
 * or an object whose fields become fields of the line (`{ msg, job_id, request_id, ... }`).
 * Nest passes the logger's context as the last argument, and for errors a stack before it.
 */
export class PinoLoggerService implements LoggerService {
  constructor(readonly pino: Logger) {}

  log(message: unknown, ...params: unknown[]): void {
    this.write('info', message, params);
  }

  error(message: unknown, ...params: unknown[]): void {
    this.write('error', message, params, true);
  }

  warn(message: unknown, ...params: unknown[]): void {
    this.write('warn', message, params);
  }

  debug(message: unknown, ...params: unknown[]): void {
    this.write('debug', message, params);
  }

  verbose(message: unknown, ...params: unknown[]): void {
    this.write('trace', message, params);
  }

  fatal(message: unknown, ...params: unknown[]): void {
    this.write('fatal', message, params, true);
  }

  private write(level: Level, message: unknown, params: unknown[], withStack = false): void {
    if (!this.pino.isLevelEnabled(level)) return;
    const { context, stack, extra } = splitParams(params, withStack);
    const fields: Record<string, unknown> = {};
    if (context) fields.context = context;
    let msg: string;
    if (message instanceof Error) {
      msg = message.message;
      fields.error_type = message.name;
      if (withStack && message.stack) fields.stack = message.stack;
    } else if (isPlainObject(message)) {
      const { msg: text, message: alt, ...rest } = message;
      Object.assign(fields, rest);
      msg = String(text ?? alt ?? '');
    } else {
      msg = String(message);
    }
    if (stack) fields.stack = stack;
    if (extra.length > 0) fields.args = extra;
    this.pino[level](fields, msg);
  }
}

const STACK_LINE = /\n\s+at /;

function splitParams(params: unknown[], withStack: boolean): { context?: string; stack?: string; extra: unknown[] } {
  const rest = [...params];
  let context: string | undefined;
  if (rest.length > 0 && typeof rest[rest.length - 1] === 'string' && !(withStack && rest.length === 1 && STACK_LINE.test(rest[0] as string))) {
    context = rest.pop() as string;
  }
  let stack: string | undefined;
  if (withStack && rest.length > 0 && (rest[0] === undefined || typeof rest[0] === 'string')) {
    stack = (rest.shift() as string | undefined) || undefined;
  }
  return { context, stack, extra: rest.filter((p) => p !== undefined) };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype;
}

/**
 * The logger an app runs with: LOG_FORMAT=json (default) is pino, one JSON object per line on
 * stdout; LOG_FORMAT=text is Nest's ConsoleLogger. `destination` replaces stdout (tests).
 */
export function createAppLogger(
  config: Pick<GatewayConfig, 'logLevel' | 'logFormat'>,
  app: 'api' | 'worker',
  destination?: DestinationStream,
): LoggerService {
  if (config.logFormat === 'text') return new ConsoleLogger({ logLevels: logLevels(config.logLevel) });
  const instance = pino(
    {
      level: PINO_LEVEL[config.logLevel],
      base: { app, pid: process.pid, hostname: os.hostname() },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACTED_PATHS, censor: '***' },
    },
    // Synchronous writes: a line logged just before the process exits is not lost.
    destination ?? pino.destination({ dest: 1, sync: true }),
  );
  return new PinoLoggerService(instance);
}
