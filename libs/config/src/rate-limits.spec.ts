import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadRateLimits, modelLimits, parseLimits } from './rate-limits';

describe('rate limits file', () => {
  it('loads the shipped config/limits.yaml with its documented defaults', () => {
    const problems: string[] = [];
    const limits = loadRateLimits(undefined, problems);
    expect(problems).toEqual([]);
    expect(limits.source).toMatch(/config[\\/]limits\.yaml$/);
    expect(limits.providers.openai).toMatchObject({ rpm: 10000, headroom: 0.03, defaultMaxTokens: 1024, refundUnusedTokens: false });
    expect(limits.providers.anthropic).toMatchObject({ refundUnusedTokens: true, defaultMaxTokens: 4096 });
    expect(modelLimits(limits.providers.google!, 'multimodalembedding@001')).toEqual({ rpm: 600 });
  });

  it('matches exact model names first, then the longest prefix', () => {
    const [limits] = [parseLimits({ providers: { openai: { models: { 'gpt-4o*': { rpm: 1 }, 'gpt-4o-mini*': { rpm: 2 }, 'gpt-4o': { rpm: 3 } } } } }, 'f', [])];
    const openai = limits.openai!;
    expect(modelLimits(openai, 'gpt-4o')).toEqual({ rpm: 3 });
    expect(modelLimits(openai, 'gpt-4o-mini-2024')).toEqual({ rpm: 2 });
    expect(modelLimits(openai, 'gpt-4o-2024')).toEqual({ rpm: 1 });
    expect(modelLimits(openai, 'o3')).toBeUndefined();
  });

  it('reports every problem with its place, and what is allowed', () => {
    const problems: string[] = [];
    parseLimits(
      { headroom: 0.9, providers: { openia: {}, openai: { rpm: -5, tmp: 3, models: { x: { tpm: 1.5, burst: 1 } } }, google: { refund_unused_tokens: 'yes' } } },
      'limits.yaml',
      problems,
    );
    expect(problems).toEqual([
      'limits.yaml: headroom=0.9 must be a number above 0 and below 0.5 (default 0.03)',
      'limits.yaml: providers.openia: unknown provider queue (known: openai, anthropic, google, plugins)',
      expect.stringContaining('limits.yaml: providers.openai: unknown key "tmp"'),
      expect.stringContaining('limits.yaml: providers.openai.models.x: unknown key "burst"'),
      'limits.yaml: providers.openai.models.x.tpm=1.5 must be a whole number from 1 to 1e12 (leave it out for no cap)',
      'limits.yaml: providers.openai.rpm=-5 must be a whole number from 1 to 1e12 (leave it out for no cap)',
      'limits.yaml: providers.google.refund_unused_tokens="yes" must be true or false',
    ]);
  });

  it('names a file it cannot read or parse, and turns off with none', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'limits-'));
    const bad = path.join(dir, 'bad.yaml');
    fs.writeFileSync(bad, 'providers: [unclosed');
    const problems: string[] = [];
    loadRateLimits(path.join(dir, 'missing.yaml'), problems);
    loadRateLimits(bad, problems);
    expect(problems[0]).toContain('missing.yaml cannot be read (ENOENT)');
    expect(problems[1]).toContain('bad.yaml is not valid YAML');
    expect(loadRateLimits('none', problems)).toEqual({ providers: {} });
    fs.rmSync(dir, { recursive: true });
  });
});
