import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import IORedis from 'ioredis';
import { fakeEmbedding } from '../fakes/openai-fake';
import { eventually, REDIS_URL, useOpenAIGateway } from '../support/gateway-harness';

const CLI = path.join(__dirname, '..', '..', 'scripts', 'batch-cli.js');
const MODEL = 'text-embedding-3-small';

interface Run {
  child: ChildProcess;
  stderr(): string;
  exited: Promise<number | string>;
}

function cli(args: string[]): Run {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '' } });
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  child.stdout!.resume();
  const exited = new Promise<number | string>((r) => child.on('exit', (code, signal) => r(code ?? signal ?? -1)));
  return { child, stderr: () => err, exited };
}

/** The CLI (scripts/batch-cli.js) as a user runs it, against the in-process API and worker. */
describe('batch CLI', () => {
  const t = useOpenAIGateway({ BATCH_FEED_WINDOW: '50' });
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-batch-cli-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const writeInput = (lines: string[]): string => {
    const file = path.join(dir, 'texts.jsonl');
    fs.writeFileSync(file, `${lines.join('\n')}\n`);
    return file;
  };
  const readOut = (file: string): any[] => fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));

  it('submit: uploads plain {custom_id, text} lines and full request lines, shows progress with rate and ETA, writes the results in order', async () => {
    const lines = Array.from({ length: 300 }, (_, i) => JSON.stringify({ custom_id: `t${i}`, text: `text ${i % 30}` }));
    lines.push(JSON.stringify({ custom_id: 'chat', provider: 'openai', model: 'gpt-4o-mini', inputs: { prompts: ['hello'] } }));
    lines.push(JSON.stringify({ text: 'no id' }));
    const out = path.join(dir, 'results.jsonl');
    const run = cli(['batch', 'submit', writeInput(lines), '--out', out, '--url', t.gw.url, '--provider', 'openai', '--model', MODEL, '--poll-ms', '100']);
    expect(await run.exited).toBe(0);

    const results = readOut(out);
    expect(results).toHaveLength(302);
    results.forEach((r, i) => expect(r.index).toBe(i));
    expect(results[0]).toMatchObject({ custom_id: 't0', response: { data: { embedding: Array.from(fakeEmbedding(MODEL, 'text 0', 1536)) } } });
    expect(results[300]).toMatchObject({ custom_id: 'chat', response: { data: { text: 'echo: hello' } } });
    expect(results[301].custom_id).toBe('302'); // a missing custom_id becomes the line number
    expect(fs.existsSync(`${out}.batch.json`)).toBe(false);
    const err = run.stderr();
    expect(err).toMatch(/submitted batch batch_[0-9a-f]{24}: 302 lines/);
    expect(err).toMatch(/\] +\d+\.\d% \d+\/302 \(0 failed\) \d+\.\d\/s ETA \d+:\d\d (IN_PROGRESS|FINALIZING|COMPLETED)/);
    expect(err).toMatch(/COMPLETED: 302 completed, 0 failed of 302; 302 result lines in/);
  });

  it('an interrupted run resumes the same batch instead of submitting it again', async () => {
    t.fake.hang('/embeddings');
    const input = writeInput(Array.from({ length: 120 }, (_, i) => JSON.stringify({ custom_id: `r${i}`, text: `resume ${i}` })));
    const out = path.join(dir, 'results.jsonl');
    const args = ['submit', input, '--out', out, '--url', t.gw.url, '--provider', 'openai', '--model', MODEL, '--poll-ms', '100'];
    const first = cli(args);
    const state = `${out}.batch.json`;
    await eventually(() => fs.existsSync(state) && first.stderr().includes('IN_PROGRESS'), 15_000, 'the first run to be polling');
    first.child.kill('SIGINT');
    await first.exited;
    const { batch_id: id } = JSON.parse(fs.readFileSync(state, 'utf8'));
    expect(fs.existsSync(out)).toBe(false);

    const redis = new IORedis(REDIS_URL);
    const batches = async (): Promise<string[]> => (await redis.keys(`${t.gw.prefix}:batch:*:meta`)).sort();
    try {
      const before = await batches();
      const second = cli(args);
      await eventually(() => second.stderr().includes(`resuming batch ${id}`), 10_000, 'the second run to resume');
      t.fake.release();
      expect(await second.exited).toBe(0);
      expect(await batches()).toEqual(before); // nothing was submitted again
      const results = readOut(out);
      expect(results.map((r) => r.custom_id)).toEqual(Array.from({ length: 120 }, (_, i) => `r${i}`));
      expect(results.every((r) => r.response)).toBe(true);
      expect(second.stderr()).toContain(`batch ${id} COMPLETED: 120 completed`);
      expect(fs.existsSync(state)).toBe(false);
    } finally {
      t.fake.release();
      redis.disconnect();
    }
  });

  it('plain text lines without --provider/--model are refused with a message that says what to add', async () => {
    const run = cli(['submit', writeInput([JSON.stringify({ custom_id: 'x', text: 'y' })]), '--out', path.join(dir, 'o.jsonl'), '--url', t.gw.url]);
    expect(await run.exited).toBe(1);
    expect(run.stderr()).toContain('give --provider and --model');
  });
});
