import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LocalDiskResultStore } from './result-store';

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let out = '';
  for await (const chunk of stream) out += chunk.toString();
  return out;
}

describe('LocalDiskResultStore', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-results-'));
  const store = new LocalDiskResultStore(root);
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  it('appends, reads whole or streamed from an offset, and sizes objects', async () => {
    await store.append('batch1/results', '{"line":1}\n');
    await store.append('batch1/results', Buffer.from('{"line":2}\n'));
    expect((await store.get('batch1/results'))!.toString()).toBe('{"line":1}\n{"line":2}\n');
    expect(await store.size('batch1/results')).toBe(22);
    expect(await readAll((await store.stream('batch1/results', 11))!)).toBe('{"line":2}\n');
    await store.put('batch1/results', 'replaced');
    expect((await store.get('batch1/results'))!.toString()).toBe('replaced');
  });

  it('answers undefined for what does not exist, and deletes one key or a whole prefix', async () => {
    expect(await store.get('nope')).toBeUndefined();
    expect(await store.stream('nope')).toBeUndefined();
    expect(await store.size('nope')).toBeUndefined();
    await store.put('b2', 'top');
    await store.put('b2/a', 'a');
    await store.put('b2/b', 'b');
    await store.delete('b2/a');
    expect(await store.get('b2/a')).toBeUndefined();
    expect((await store.get('b2/b'))!.toString()).toBe('b');
    await store.delete('b2', { prefix: true });
    expect(await store.get('b2')).toBeUndefined();
    expect(await store.get('b2/b')).toBeUndefined();
  });

  it('refuses keys that could leave its folder', async () => {
    for (const key of ['../x', 'a/../../x', '/abs', 'a//b', '.', 'a/..', 'sp ace']) {
      await expect(store.put(key, 'x')).rejects.toThrow('invalid result key');
    }
  });
});
