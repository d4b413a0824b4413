import { randomBytes } from 'node:crypto';
import { Queue } from 'bullmq';
import IORedis from 'ioredis';
import { GatewayError, QueueName } from '@lib/contracts';
import { GatewayConfig } from '@lib/config';
import { QueueRegistry } from '@lib/queue';
import { BacklogGate } from './backlog-gate';

const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A real BullMQ queue on the real Redis; Redis is paused (CLIENT PAUSE) to see which admissions wait for a count. */
describe('BacklogGate', () => {
  const prefix = `t${randomBytes(4).toString('hex')}`;
  let connection: IORedis;
  let admin: IORedis;
  let queue: Queue;
  let gate: BacklogGate;

  beforeAll(() => {
    connection = new IORedis(REDIS_URL, { maxRetriesPerRequest: null });
    admin = new IORedis(REDIS_URL);
    queue = new Queue('openai', { connection, prefix });
    gate = new BacklogGate({ queueMaxBacklog: 10 } as GatewayConfig, { get: () => queue } as unknown as QueueRegistry);
  });

  afterAll(async () => {
    await queue.obliterate({ force: true });
    await queue.close();
    connection.disconnect();
    admin.disconnect();
  });

  /** Calls admit while Redis is paused; whether it had settled 150 ms into the pause, and how it ended. */
  async function admitDuringPause(): Promise<{ settledDuringPause: boolean; outcome: unknown }> {
    await admin.client('PAUSE', 800, 'ALL');
    let settled = false;
    const admission = gate.admit(QueueName.OpenAI).then(
      () => 'admitted',
      (err: unknown) => err,
    );
    void admission.then(() => (settled = true));
    await sleep(150);
    const settledDuringPause = settled;
    return { settledDuringPause, outcome: await admission };
  }

  it('a stale count far under the bound is re-read in the background: the request does not wait for Redis', async () => {
    await gate.admit(QueueName.OpenAI); // first count: 0
    await sleep(300); // past the 250 ms a count is trusted
    const { settledDuringPause, outcome } = await admitDuringPause();
    expect(outcome).toBe('admitted');
    expect(settledDuringPause).toBe(true);
  });

  it('a stale count at half the bound or more is re-read before admitting, and the bound holds', async () => {
    await queue.addBulk(Array.from({ length: 8 }, (_, i) => ({ name: 'inference', data: { i } })));
    await sleep(300);
    // The last count (0) is under half the bound: this one goes on and re-reads 8 meanwhile.
    await gate.admit(QueueName.OpenAI);
    await sleep(350);
    const { settledDuringPause, outcome } = await admitDuringPause();
    expect(settledDuringPause).toBe(false);
    expect(outcome).toBe('admitted'); // 8 waiting + 1 = 9 < 10
    // Two more jobs from elsewhere: 10 in the queue. The next stale count is re-read (9 is over
    // half the bound) and refuses.
    await queue.addBulk([8, 9].map((i) => ({ name: 'inference', data: { i } })));
    await sleep(300);
    const refused = await gate.admit(QueueName.OpenAI).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(GatewayError);
    expect((refused as GatewayError).code).toBe('queue_backlog_full');
  });
});
