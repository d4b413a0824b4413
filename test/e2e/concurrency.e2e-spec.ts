import { useOpenAIGateway } from '../support/gateway-harness';

/**
 * 1,000 synchronous requests in flight at once through one API process: each must get its
 * own answer (the shared completion listener routes by job id), none may be lost or crossed.
 */
describe('1,000 concurrent synchronous requests', () => {
  const t = useOpenAIGateway({ WORKER_CONCURRENCY: '250', SYNC_TIMEOUT_MS: '60000' }, { fake: { latencyMs: 100, record: false } });

  it('every client gets the result of its own request', async () => {
    const n = 1000;
    const responses = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        i % 2 === 0
          ? t.gw.infer({ provider: 'openai', model: 'gpt-4o-mini', inputs: { prompts: [`question ${i}`] } })
          : t.gw.infer({ provider: 'openai', model: 'text-embedding-3-small', inputs: { text: `text ${i}` }, parameters: { dimensions: 8 } }),
      ),
    );
    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    for (const [i, res] of responses.entries()) {
      if (i % 2 === 0) expect(res.body.data.text).toBe(`echo: question ${i}`);
      else expect(res.body.data.dimensions).toBe(8);
    }
    // Embeddings of different texts differ: no response was handed to the wrong client.
    const vectors = new Set(responses.filter((_, i) => i % 2 === 1).map((r) => JSON.stringify(r.body.data.embedding)));
    expect(vectors.size).toBe(n / 2);
    expect(t.fake.count()).toBe(n);
  });
});
