import { RequestValidationError } from '@lib/contracts';
import { parseFeatureUri } from './feature-uri';

function problem(uri: string): string {
  try {
    parseFeatureUri(uri);
  } catch (err) {
    expect(err).toBeInstanceOf(RequestValidationError);
    const [item] = (err as RequestValidationError).items;
    expect(item.loc).toEqual(['body', 'feature_uri']);
    expect(item.type).toBe('value_error');
    return item.msg;
  }
  throw new Error(`${uri} parsed`);
}

describe('parseFeatureUri', () => {
  it('reads extractor, version (v1 or semver) and the optional output', () => {
    expect(parseFeatureUri('mixpeek://text_extractor@v1/multilingual_e5_large_instruct_v1')).toEqual({
      extractor: 'text_extractor',
      version: 'v1',
      output: 'multilingual_e5_large_instruct_v1',
    });
    expect(parseFeatureUri('mixpeek://my_custom_embedder@1.0.0/embedding')).toEqual({ extractor: 'my_custom_embedder', version: '1.0.0', output: 'embedding' });
    expect(parseFeatureUri('mixpeek://text_extractor@v1')).toEqual({ extractor: 'text_extractor', version: 'v1' });
  });

  it.each([
    ['http://text_extractor@v1/x', 'the scheme is "http://"; feature URIs use mixpeek://'],
    ['text_extractor@v1/x', 'it must start with mixpeek://'],
    ['Mixpeek://text_extractor@v1/x', 'the scheme is "Mixpeek://"'],
    ['mixpeek://text_extractor/x', '"text_extractor" has no version'],
    ['mixpeek://a@v1@v2/x', 'has more than one "@"'],
    ['mixpeek://@v1/x', 'the extractor name is empty'],
    ['mixpeek://Text-Extractor@v1/x', 'extractor "Text-Extractor" must be lowercase letters'],
    ['mixpeek://text_extractor@/x', 'has an empty version'],
    ['mixpeek://text_extractor@1.0/x', 'version "1.0" must be v<N> (e.g. v1) or MAJOR.MINOR.PATCH'],
    ['mixpeek://text_extractor@latest/x', 'version "latest"'],
    ['mixpeek://text_extractor@v1/', 'the output after "/" is empty'],
    ['mixpeek://text_extractor@v1/a/b', '"a/b" has more than one path segment'],
    ['mixpeek://text_extractor@v1/Embedding', 'output "Embedding" must be lowercase'],
    ['mixpeek://text_extractor@v1/x?y=1', 'must not contain whitespace, "?" or "#"'],
    ['mixpeek://text extractor@v1/x', 'must not contain whitespace'],
  ])('refuses %s: %s', (uri, message) => {
    const msg = problem(uri);
    expect(msg).toContain(message);
    expect(msg).toContain('format mixpeek://{extractor}@{version}/{output}');
  });
});
