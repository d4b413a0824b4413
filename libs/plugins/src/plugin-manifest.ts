import type { ValidateFunction } from 'ajv';
import type { ValidationErrorItem } from '@lib/contracts';

/** The file that makes a folder under PLUGINS_DIR a plugin. */
export const MANIFEST_FILE = 'plugin.json';

/** Plugin and extractor names: what a feature URI and an inference_name can carry unambiguously. */
export const NAME_PATTERN = /^[a-z][a-z0-9_]{0,63}$/;
/** `v1` style or plain semver `1.0.0` (no pre-release: dots become underscores in inference_name). */
export const VERSION_PATTERN = /^(v\d{1,6}|\d{1,6}\.\d{1,6}\.\d{1,6})$/;
/** Output (vector index) names. */
export const FEATURE_NAME_PATTERN = /^[a-z][a-z0-9_]{0,127}$/;

/** One thing a plugin produces, addressed by `mixpeek://{name}@{version}/{feature_name}`. */
export interface PluginOutput {
  feature_name: string;
  /** `embedding` outputs carry `embedding_dim`, which the worker checks the answer against. */
  feature_type: string;
  embedding_dim?: number;
  distance_metric?: 'cosine' | 'dot' | 'euclidean';
}

/** `plugin.json` as its author writes it (README, "Plugins and feature URIs"). */
export interface PluginManifest {
  name: string;
  version: string;
  description?: string;
  /** The module exporting `infer`, relative to the plugin folder. @defaultValue index.js */
  entry?: string;
  outputs: PluginOutput[];
  /** JSON Schema of `inputs` (an object schema). */
  inputs: Record<string, unknown>;
  /** JSON Schema of `parameters`. @defaultValue any object */
  parameters?: Record<string, unknown>;
  /** Time one call may take, in ms. @defaultValue PLUGIN_TIMEOUT_MS */
  timeout_ms?: number;
  /** Calls in flight per worker process (each in its own child process). @defaultValue PLUGIN_CONCURRENCY */
  concurrency?: number;
  /** Environment variables of the worker the plugin may read; it sees no others (no gateway secrets). */
  env?: string[];
}

/** A plugin ready to be resolved, validated against and run. */
export interface PluginDefinition {
  name: string;
  version: string;
  description: string;
  /** `name_version` with dots as underscores. */
  inferenceName: string;
  outputs: PluginOutput[];
  inputsSchema: Record<string, unknown>;
  parametersSchema: Record<string, unknown>;
  timeoutMs: number;
  concurrency: number;
  /** Builtins run inside the worker (they are the gateway's own code); custom plugins in child processes. */
  builtin: boolean;
  /** Absolute path of the module (custom plugins). */
  entry?: string;
  /** The plugin folder (custom plugins). */
  dir?: string;
  env: string[];
  validateInputs: ValidateFunction;
  validateParameters: ValidateFunction;
  /** Rules a JSON Schema cannot say well (builtins): more 422 items. */
  extraChecks?: (inputs: Record<string, unknown>, parameters: Record<string, unknown>) => ValidationErrorItem[];
}

/** A plugin folder that could not be loaded, named so the operator can find it. */
export interface BrokenPlugin {
  /** The manifest's name when it could be read, else the folder name. */
  name: string;
  dir: string;
  problems: string[];
}

/** `my_text_embedder` + `1.0.0` -> `my_text_embedder_1_0_0`. */
export function inferenceNameOf(name: string, version: string): string {
  return `${name}_${version.replace(/\./g, '_')}`;
}

export function featureUriOf(name: string, version: string, featureName: string): string {
  return `mixpeek://${name}@${version}/${featureName}`;
}

/** The JSON Schema `plugin.json` must satisfy (checked with ajv; errors name the field). */
export const MANIFEST_SCHEMA = {
  type: 'object',
  required: ['name', 'version', 'outputs', 'inputs'],
  additionalProperties: false,
  properties: {
    $schema: { type: 'string' },
    name: { type: 'string', pattern: NAME_PATTERN.source },
    version: { type: 'string', pattern: VERSION_PATTERN.source },
    description: { type: 'string', maxLength: 2000 },
    entry: { type: 'string', pattern: '\\.(js|cjs|mjs|ts)$' },
    outputs: {
      type: 'array',
      minItems: 1,
      maxItems: 64,
      items: {
        type: 'object',
        required: ['feature_name', 'feature_type'],
        additionalProperties: false,
        properties: {
          feature_name: { type: 'string', pattern: FEATURE_NAME_PATTERN.source },
          feature_type: { type: 'string', pattern: '^[a-z][a-z0-9_]{0,63}$' },
          embedding_dim: { type: 'integer', minimum: 1, maximum: 65536 },
          distance_metric: { enum: ['cosine', 'dot', 'euclidean'] },
        },
        if: { properties: { feature_type: { const: 'embedding' } } },
        then: { required: ['embedding_dim'] },
      },
    },
    inputs: { type: 'object' },
    parameters: { type: 'object' },
    timeout_ms: { type: 'integer', minimum: 100, maximum: 86_400_000 },
    concurrency: { type: 'integer', minimum: 1, maximum: 256 },
    env: { type: 'array', items: { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$' } },
  },
} as const;
