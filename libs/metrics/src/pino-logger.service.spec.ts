import { ConsoleLogger, Logger } from '@nestjs/common';
import { createAppLogger, PinoLoggerService } from './pino-logger.service';

function capture(level: 'error' | 'warn' | 'log' | 'debug' = 'log') {
  const lines: Array<Record<string, any>> = [];
  const logger = createAppLogger({ logLevel: level, logFormat: 'json' }, 'api', { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { logger: logger as PinoLoggerService, lines };
}

describe('createAppLogger / PinoLoggerService', () => {
  it('writes one JSON object per event with level name, time, app, pid and context', () => {
    const { logger, lines } = capture();
    logger.log('listening on http://127.0.0.1:8000', 'Api');
    expect(lines).toEqual([
      expect.objectContaining({ level: 'info', msg: 'listening on http://127.0.0.1:8000', context: 'Api', app: 'api', pid: process.pid }),
    ]);
    expect(Date.parse(lines[0].time)).not.toBeNaN();
  });

  it('keeps LOG_LEVEL: log means info, debug is dropped below it, error keeps only errors', () => {
    const info = capture('log');
    info.logger.debug('hidden', 'X');
    info.logger.warn('shown', 'X');
    expect(info.lines.map((l) => [l.level, l.msg])).toEqual([['warn', 'shown']]);
    const errorsOnly = capture('error');
    errorsOnly.logger.log('no', 'X');
    errorsOnly.logger.warn('no', 'X');
    errorsOnly.logger.error('yes', undefined, 'X');
    expect(errorsOnly.lines.map((l) => l.msg)).toEqual(['yes']);
    const debug = capture('debug');
    debug.logger.debug('seen', 'X');
    expect(debug.lines[0]).toMatchObject({ level: 'debug', msg: 'seen' });
  });

  it('turns an object message into fields, and reads the stack Nest passes with errors', () => {
    const { logger, lines } = capture();
    logger.log({ msg: 'job completed', job_id: 'openai-1', request_id: 'r-1', duration_ms: 12 }, 'Jobs');
    logger.error('boom', 'Error: boom\n    at somewhere (x.ts:1:1)', 'ExceptionsHandler');
    logger.error(new Error('bad thing'), 'Ctx');
    expect(lines[0]).toMatchObject({ msg: 'job completed', job_id: 'openai-1', request_id: 'r-1', duration_ms: 12, context: 'Jobs' });
    expect(lines[1]).toMatchObject({ level: 'error', msg: 'boom', context: 'ExceptionsHandler', stack: expect.stringContaining('at somewhere') });
    expect(lines[2]).toMatchObject({ msg: 'bad thing', error_type: 'Error', context: 'Ctx' });
  });

  it('never writes authorization or API key fields, even when an object carries them', () => {
    const { logger, lines } = capture();
    logger.log({ msg: 'oops', authorization: 'Bearer sk-secret-1', headers: { authorization: 'Bearer sk-secret-2' }, apiKey: 'sk-secret-3' }, 'X');
    const text = JSON.stringify(lines);
    expect(text).not.toContain('sk-secret');
    expect(lines[0].authorization).toBe('***');
  });

  it("receives Nest's Logger calls once installed as the app logger", () => {
    const { logger, lines } = capture();
    Logger.overrideLogger(logger);
    try {
      new Logger('Svc').warn('through Nest');
    } finally {
      Logger.overrideLogger(new ConsoleLogger());
    }
    expect(lines).toEqual([expect.objectContaining({ level: 'warn', msg: 'through Nest', context: 'Svc' })]);
  });

  it("LOG_FORMAT=text is Nest's ConsoleLogger with the LOG_LEVEL levels", () => {
    const logger = createAppLogger({ logLevel: 'warn', logFormat: 'text' }, 'worker');
    expect(logger).toBeInstanceOf(ConsoleLogger);
    expect((logger as ConsoleLogger).isLevelEnabled('log')).toBe(false);
    expect((logger as ConsoleLogger).isLevelEnabled('warn')).toBe(true);
  });
});
