import { packResult, unpackResult } from './packed-vectors';

const response = (data: Record<string, unknown>) => ({ data, provider: 'openai', model: 'm', tokens_used: null, latency_ms: 1, cached: false });
const f32 = (n: number, seed: number): number[] => Array.from(new Float32Array(Array.from({ length: n }, (_, i) => Math.sin(seed + i))));

describe('packed vectors', () => {
  it('packs float32 embeddings to base64 and unpacks them to the same numbers', () => {
    const one = response({ embedding: f32(1536, 1), dimensions: 1536 });
    const packed = packResult(one);
    expect(Object.keys(packed.data).sort()).toEqual(['dimensions', 'embedding_f32']);
    expect(JSON.stringify(packed).length).toBeLessThan(JSON.stringify(one).length / 3);
    expect(unpackResult(packed)).toEqual(one);

    const many = response({ embeddings: [f32(8, 1), f32(8, 2), f32(8, 3)], dimensions: 8 });
    const packedMany = packResult(many);
    expect(packedMany.data).toMatchObject({ count: 3, dimensions: 8, embeddings_f32: expect.any(String) });
    expect(unpackResult(packedMany)).toEqual(many);
  });

  it('leaves alone what float32 would change, ragged rows and everything that is not an embedding', () => {
    const double = response({ embedding: [0.1, 0.2], dimensions: 2 });
    expect(packResult(double)).toBe(double);
    const ragged = response({ embeddings: [f32(2, 1), f32(3, 1)], dimensions: 2 });
    expect(packResult(ragged)).toBe(ragged);
    const chat = response({ text: 'hi', finish_reason: 'stop' });
    expect(packResult(chat)).toBe(chat);
    expect(unpackResult(chat)).toBe(chat);
  });
});
