import { ErrorType, GatewayError, PluginTarget, RequestMode, RequestValidationError } from '@lib/contracts';
import { GatewayConfig } from '@lib/config';
import { parseFeatureUri } from './feature-uri';
import { loadPluginFolder } from './plugin-loader';
import { BrokenPlugin, featureUriOf, PluginDefinition, PluginOutput } from './plugin-manifest';
import { schemaErrorsToItems } from './schema-validator';
import { textExtractorDefinition, textExtractorUnavailable } from './builtin/text-extractor';

/** A plugin-mode request, resolved: the plugin and, when known, the output it asked for. */
export interface ResolvedPlugin {
  plugin: PluginDefinition;
  output?: PluginOutput;
}

/** One entry of `GET /v1/inference/plugins`. */
export interface PluginInfo {
  name: string;
  version: string;
  description: string;
  inference_name: string;
  builtin: boolean;
  /** False when the plugin cannot run on this gateway (a builtin whose server is not configured). */
  available: boolean;
  unavailable_reason?: string;
  outputs: Array<PluginOutput & { feature_uri: string }>;
  /** JSON Schema of `inputs`. */
  inputs: Record<string, unknown>;
  /** JSON Schema of `parameters`. */
  parameters: Record<string, unknown>;
  timeout_ms: number;
  concurrency: number;
}

/**
 * Every plugin this process knows: the builtins and the folders of PLUGINS_DIR. Resolves
 * `inference_name` and `feature_uri` (404 for well-formed names of nothing, 422 for malformed
 * URIs) and validates inputs and parameters against the plugin's schemas (422).
 */
export class PluginCatalog {
  private readonly byInferenceName = new Map<string, PluginDefinition>();

  private constructor(
    private readonly config: GatewayConfig,
    plugins: PluginDefinition[],
    readonly broken: BrokenPlugin[],
  ) {
    for (const plugin of plugins) this.byInferenceName.set(plugin.inferenceName, plugin);
  }

  static load(config: GatewayConfig): PluginCatalog {
    const builtins = [textExtractorDefinition(config)];
    const loaded = config.pluginsDir
      ? loadPluginFolder(config.pluginsDir, { timeoutMs: config.pluginTimeoutMs, concurrency: config.pluginConcurrency })
      : { plugins: [], broken: [] };
    const broken = [...loaded.broken];
    const custom = loaded.plugins.filter((p) => {
      if (!builtins.some((b) => b.inferenceName === p.inferenceName)) return true;
      broken.push({ name: p.name, dir: p.dir ?? '', problems: [`${p.name}@${p.version} is a builtin extractor's name and version; rename the plugin`] });
      return false;
    });
    return new PluginCatalog(config, [...builtins, ...custom], broken);
  }

  list(): PluginDefinition[] {
    return [...this.byInferenceName.values()];
  }

  get(inferenceName: string): PluginDefinition | undefined {
    return this.byInferenceName.get(inferenceName);
  }

  /** The plugin a plugin-mode request names; throws 422 (malformed URI) or 404 (unknown). */
  resolve(mode: Exclude<RequestMode, { kind: 'provider' }>): ResolvedPlugin {
    if (mode.kind === 'inference_name') {
      const plugin = this.byInferenceName.get(mode.inferenceName);
      if (!plugin) {
        const known = [...this.byInferenceName.keys()];
        throw new GatewayError(ErrorType.NotFound, `No plugin has inference_name "${mode.inferenceName}"; known: ${known.join(', ')}`, 'plugin_not_found', {
          inference_name: mode.inferenceName,
          known_inference_names: known,
        });
      }
      return { plugin, output: plugin.outputs.length === 1 ? plugin.outputs[0] : undefined };
    }
    return this.resolveFeatureUri(mode.featureUri);
  }

  private resolveFeatureUri(uri: string): ResolvedPlugin {
    const { extractor, version, output } = parseFeatureUri(uri);
    const asked = { feature_uri: uri, extractor, version, output: output ?? null };
    const plugin = this.list().find((p) => p.name === extractor && p.version === version);
    if (!plugin) {
      const versions = this.list().filter((p) => p.name === extractor).map((p) => p.version);
      const known = this.list().flatMap((p) => p.outputs.map((o) => featureUriOf(p.name, p.version, o.feature_name)));
      const why = versions.length > 0 ? `extractor ${extractor} has no version ${version} (known: ${versions.join(', ')})` : `no extractor is named ${extractor}`;
      throw new GatewayError(ErrorType.NotFound, `Feature URI ${uri} names nothing: ${why}`, 'plugin_not_found', {
        ...asked,
        known_versions: versions,
        known_feature_uris: known,
      });
    }
    const outputs = plugin.outputs.map((o) => o.feature_name);
    if (output === undefined) {
      if (plugin.outputs.length === 1) return { plugin, output: plugin.outputs[0] };
      throw RequestValidationError.single(
        ['body', 'feature_uri'],
        `Invalid feature URI: ${extractor}@${version} has ${outputs.length} outputs (${outputs.join(', ')}), so the URI must name one: ${uri}/{output}`,
        'value_error',
      );
    }
    const found = plugin.outputs.find((o) => o.feature_name === output);
    if (!found) {
      throw new GatewayError(ErrorType.NotFound, `Extractor ${extractor}@${version} has no output ${output}; its outputs: ${outputs.join(', ')}`, 'feature_not_found', {
        ...asked,
        known_outputs: outputs,
        known_feature_uris: plugin.outputs.map((o) => featureUriOf(plugin.name, plugin.version, o.feature_name)),
      });
    }
    return { plugin, output: found };
  }

  /** A 503 when the plugin cannot run on this gateway (a builtin whose server is not set up). */
  unavailable(plugin: PluginDefinition): GatewayError | undefined {
    return plugin.builtin ? textExtractorUnavailable(this.config) : undefined;
  }

  /**
   * Checks inputs and parameters against the plugin's schemas (every problem in one 422) and
   * returns validated copies, with the schemas' defaults filled in. Null inputs count as absent.
   */
  validate(plugin: PluginDefinition, inputs: Record<string, unknown>, parameters: Record<string, unknown> | null | undefined) {
    const inputsCopy = structuredClone(Object.fromEntries(Object.entries(inputs).filter(([, v]) => v !== null && v !== undefined)));
    const parametersCopy = structuredClone(parameters ?? {});
    const items = [];
    if (!plugin.validateInputs(inputsCopy)) items.push(...schemaErrorsToItems(plugin.validateInputs.errors, ['body', 'inputs']));
    if (!plugin.validateParameters(parametersCopy)) items.push(...schemaErrorsToItems(plugin.validateParameters.errors, ['body', 'parameters']));
    if (items.length === 0) items.push(...(plugin.extraChecks?.(inputsCopy, parametersCopy) ?? []));
    if (items.length > 0) throw new RequestValidationError(items);
    return { inputs: inputsCopy, parameters: parametersCopy };
  }

  describe(): PluginInfo[] {
    return this.list().map((p) => {
      const unavailable = this.unavailable(p);
      return {
        name: p.name,
        version: p.version,
        description: p.description,
        inference_name: p.inferenceName,
        builtin: p.builtin,
        available: !unavailable,
        ...(unavailable ? { unavailable_reason: unavailable.message } : {}),
        outputs: p.outputs.map((o) => ({ ...o, feature_uri: featureUriOf(p.name, p.version, o.feature_name) })),
        inputs: p.inputsSchema,
        parameters: p.parametersSchema,
        timeout_ms: p.timeoutMs,
        concurrency: p.concurrency,
      };
    });
  }
}

/** What a job carries to name its plugin. */
export function pluginTargetOf(resolved: ResolvedPlugin): PluginTarget {
  const { plugin, output } = resolved;
  return { inferenceName: plugin.inferenceName, name: plugin.name, version: plugin.version, ...(output ? { output: output.feature_name } : {}) };
}
