import { GatewayError } from '@lib/contracts';
import { ndjsonLines, UnparsableLine } from './batch-line-reader';

async function* chunks(...parts: Array<string | Buffer>): AsyncGenerator<Buffer | string> {
  for (const p of parts) yield p;
}

async function collect(source: AsyncIterable<Buffer | string>, max = 1024): Promise<unknown[]> {
  const out: unknown[] = [];
  for await (const line of ndjsonLines(source, max)) out.push(line);
  return out;
}

describe('ndjsonLines', () => {
  it('splits lines across chunk boundaries, keeps a multi-byte character cut in two, skips blank lines, accepts CRLF and a last line without newline', async () => {
    const euro = Buffer.from('{"t":"€"}\n');
    const lines = await collect(chunks('{"a":1}\r\n{"b"', ':2}\n\n  \n', euro.subarray(0, 7), euro.subarray(7), '{"c":3}'));
    expect(lines).toEqual([{ a: 1 }, { b: 2 }, { t: '€' }, { c: 3 }]);
  });

  it('a line that is not JSON is a value of its own, not an error of the stream', async () => {
    const lines = await collect(chunks('{"a":1}\nnot json\n{"b":2}\n'));
    expect(lines[0]).toEqual({ a: 1 });
    expect(lines[1]).toBeInstanceOf(UnparsableLine);
    expect((lines[1] as UnparsableLine).message).toMatch(/^JSON decode error: /);
    expect(lines[2]).toEqual({ b: 2 });
  });

  it('stops at a line longer than the limit instead of buffering it', async () => {
    const reading = collect(chunks('{"a":1}\n', 'x'.repeat(40), 'x'.repeat(40)), 64);
    await expect(reading).rejects.toBeInstanceOf(GatewayError);
    await expect(collect(chunks('x'.repeat(100)), 64)).rejects.toMatchObject({ code: 'batch_line_too_long' });
  });

  it('pulls the source only as lines are consumed', async () => {
    let pulled = 0;
    async function* counted(): AsyncGenerator<string> {
      for (let i = 0; i < 100; i++) {
        pulled++;
        yield `{"i":${i}}\n`;
      }
    }
    const lines = ndjsonLines(counted(), 1024);
    await lines.next();
    await lines.next();
    expect(pulled).toBe(2);
    await lines.return(undefined);
  });
});
