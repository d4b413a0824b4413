import { StringDecoder } from 'node:string_decoder';
import { ErrorType, GatewayError } from '@lib/contracts';

/** A line that was not JSON: it stays a line (its own error), it does not fail the batch. */
export class UnparsableLine {
  constructor(readonly message: string) {}
}

/**
 * The lines of an NDJSON stream, parsed, in order. The stream is read one chunk at a time as
 * the consumer asks for lines (for-await pulls), so an upload is held in memory one chunk and
 * one line at a time, whatever its size. Blank lines are skipped; `\r\n` is accepted.
 */
export async function* ndjsonLines(stream: AsyncIterable<Buffer | string>, maxLineBytes: number): AsyncGenerator<unknown> {
  const decoder = new StringDecoder('utf8');
  let rest = '';
  for await (const chunk of stream) {
    rest += typeof chunk === 'string' ? chunk : decoder.write(chunk);
    let start = 0;
    let newline: number;
    while ((newline = rest.indexOf('\n', start)) >= 0) {
      const line = rest.slice(start, newline);
      start = newline + 1;
      if (line.trim() !== '') yield parse(line);
    }
    rest = rest.slice(start);
    if (rest.length > maxLineBytes) {
      throw new GatewayError(ErrorType.BadRequest, `A batch line is longer than ${maxLineBytes} bytes (API_MAX_BODY_BYTES)`, 'batch_line_too_long');
    }
  }
  rest += decoder.end();
  if (rest.trim() !== '') yield parse(rest);
}

function parse(line: string): unknown {
  try {
    return JSON.parse(line);
  } catch (err) {
    return new UnparsableLine(`JSON decode error: ${(err as Error).message}`);
  }
}
