import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { SchemaValidator, schemaErrorsToItems } from './schema-validator';
import {
  BrokenPlugin,
  inferenceNameOf,
  MANIFEST_FILE,
  MANIFEST_SCHEMA,
  PluginDefinition,
  PluginManifest,
} from './plugin-manifest';

export interface PluginDefaults {
  /** PLUGIN_TIMEOUT_MS */
  timeoutMs: number;
  /** PLUGIN_CONCURRENCY */
  concurrency: number;
}

export interface LoadedPlugins {
  plugins: PluginDefinition[];
  broken: BrokenPlugin[];
}

/** Folders that are never plugins (package managers, VCS, editors). */
const IGNORED = new Set(['node_modules']);

/**
 * Reads every plugin folder of `dir` (one level deep): its manifest is checked against the
 * manifest schema, its input and parameter schemas are compiled, its module must exist inside
 * the folder. A folder that fails is reported with every problem, by name, and the others load.
 * No plugin code runs here: the API reads manifests only; workers run modules in child processes.
 */
export function loadPluginFolder(dir: string, defaults: PluginDefaults): LoadedPlugins {
  const out: LoadedPlugins = { plugins: [], broken: [] };
  const folders = readdirSync(dir, { withFileTypes: true })
    .filter((e) => (e.isDirectory() || e.isSymbolicLink()) && !e.name.startsWith('.') && !IGNORED.has(e.name))
    .map((e) => path.join(dir, e.name))
    .filter((p) => statSync(p, { throwIfNoEntry: false })?.isDirectory())
    .sort();
  for (const folder of folders) {
    const result = loadOne(folder, defaults);
    if ('problems' in result) {
      out.broken.push(result);
      continue;
    }
    const twin = out.plugins.find((p) => p.inferenceName === result.inferenceName);
    if (twin) {
      out.broken.push({ name: result.name, dir: folder, problems: [`${result.name}@${result.version} is also defined in ${twin.dir}; one of them must change its name or version`] });
      continue;
    }
    out.plugins.push(result);
  }
  return out;
}

function loadOne(folder: string, defaults: PluginDefaults): PluginDefinition | BrokenPlugin {
  const broken = (problems: string[], name = path.basename(folder)): BrokenPlugin => ({ name, dir: folder, problems });
  const file = path.join(folder, MANIFEST_FILE);
  if (!existsSync(file)) return broken([`no ${MANIFEST_FILE} in the folder`]);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    return broken([`${MANIFEST_FILE} is not valid JSON: ${(err as Error).message}`]);
  }
  const validator = new SchemaValidator();
  const checkManifest = validator.compile(MANIFEST_SCHEMA as unknown as Record<string, unknown>);
  const manifestName = typeof (raw as PluginManifest)?.name === 'string' ? (raw as PluginManifest).name : undefined;
  if (!checkManifest(raw)) {
    const problems = schemaErrorsToItems(checkManifest.errors, []).map((i) => `${i.loc.join('.') || MANIFEST_FILE}: ${i.msg}`);
    return broken(problems, manifestName);
  }
  const manifest = raw as PluginManifest;
  const problems: string[] = [];

  const names = manifest.outputs.map((o) => o.feature_name);
  const duplicate = names.find((n, i) => names.indexOf(n) !== i);
  if (duplicate) problems.push(`outputs: feature_name "${duplicate}" appears twice`);

  const entry = path.resolve(folder, manifest.entry ?? 'index.js');
  if (!isInside(folder, entry)) problems.push(`entry "${manifest.entry}" points outside the plugin folder`);
  else if (!existsSync(entry)) problems.push(`entry ${path.relative(folder, entry)} does not exist`);

  if (manifest.inputs.type !== undefined && manifest.inputs.type !== 'object') problems.push('inputs: the schema must describe an object ("type": "object")');
  const parametersSchema = manifest.parameters ?? { type: 'object' };
  const validateInputs = compileOrReport(validator, manifest.inputs, 'inputs', problems);
  const validateParameters = compileOrReport(validator, parametersSchema, 'parameters', problems);
  if (problems.length > 0 || !validateInputs || !validateParameters) return broken(problems, manifest.name);

  return {
    name: manifest.name,
    version: manifest.version,
    description: manifest.description ?? '',
    inferenceName: inferenceNameOf(manifest.name, manifest.version),
    outputs: manifest.outputs.map((o) => (o.feature_type === 'embedding' ? { distance_metric: 'cosine', ...o } : { ...o })),
    inputsSchema: manifest.inputs,
    parametersSchema,
    timeoutMs: manifest.timeout_ms ?? defaults.timeoutMs,
    concurrency: manifest.concurrency ?? defaults.concurrency,
    builtin: false,
    entry,
    dir: folder,
    env: manifest.env ?? [],
    validateInputs,
    validateParameters,
  };
}

function compileOrReport(validator: SchemaValidator, schema: Record<string, unknown>, field: string, problems: string[]) {
  try {
    return validator.compile(schema);
  } catch (err) {
    problems.push(`${field}: not a usable JSON Schema: ${(err as Error).message}`);
    return undefined;
  }
}

/** Symlinks resolved, so a link cannot smuggle an entry from elsewhere. */
function isInside(folder: string, file: string): boolean {
  const real = (p: string) => (existsSync(p) ? realpathSync(p) : p);
  const relative = path.relative(real(folder), real(file));
  return relative !== '' && !relative.startsWith('..') && !path.isAbsolute(relative);
}
