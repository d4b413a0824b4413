import { RequestValidationError } from '@lib/contracts';
import { FEATURE_NAME_PATTERN, NAME_PATTERN, VERSION_PATTERN } from './plugin-manifest';

export const FEATURE_URI_SCHEME = 'mixpeek://';
const FORMAT = 'mixpeek://{extractor}@{version}/{output}, e.g. mixpeek://text_extractor@v1/multilingual_e5_large_instruct_v1';

/** A well-formed feature URI; whether it names anything is the catalog's question. */
export interface FeatureUri {
  extractor: string;
  version: string;
  /** Omitted when the extractor has one output. */
  output?: string;
}

/**
 * Parses `mixpeek://{extractor}@{version}[/{output}]` strictly: anything else is a 422 at
 * body.feature_uri that says which part is wrong and what the format is.
 */
export function parseFeatureUri(uri: string): FeatureUri {
  const fail = (what: string): never => {
    throw RequestValidationError.single(['body', 'feature_uri'], `Invalid feature URI: ${what} (format ${FORMAT})`, 'value_error');
  };
  if (/[\s?#]/.test(uri)) fail('it must not contain whitespace, "?" or "#"');
  if (!uri.startsWith(FEATURE_URI_SCHEME)) {
    const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(uri)?.[1];
    fail(scheme ? `the scheme is "${scheme}://"; feature URIs use mixpeek://` : 'it must start with mixpeek://');
  }
  const rest = uri.slice(FEATURE_URI_SCHEME.length);
  const slash = rest.indexOf('/');
  const head = slash === -1 ? rest : rest.slice(0, slash);
  const tail = slash === -1 ? undefined : rest.slice(slash + 1);

  const at = head.indexOf('@');
  if (at === -1) fail(`"${head}" has no version: write {extractor}@{version}`);
  if (head.indexOf('@', at + 1) !== -1) fail(`"${head}" has more than one "@"`);
  const extractor = head.slice(0, at);
  const version = head.slice(at + 1);
  if (!extractor) fail('the extractor name is empty');
  if (!NAME_PATTERN.test(extractor)) fail(`extractor "${extractor}" must be lowercase letters, digits and underscores, starting with a letter`);
  if (!version) fail(`extractor "${extractor}" has an empty version`);
  if (!VERSION_PATTERN.test(version)) fail(`version "${version}" must be v<N> (e.g. v1) or MAJOR.MINOR.PATCH (e.g. 1.0.0)`);

  if (tail === undefined) return { extractor, version };
  if (tail === '') fail('the output after "/" is empty: name an output or drop the trailing "/"');
  if (tail.includes('/')) fail(`"${tail}" has more than one path segment; the output is a single name`);
  if (!FEATURE_NAME_PATTERN.test(tail)) fail(`output "${tail}" must be lowercase letters, digits and underscores, starting with a letter`);
  return { extractor, version, output: tail };
}
