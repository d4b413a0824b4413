import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseAllDocuments } from 'yaml';

export const ROOT = path.join(__dirname, '..', '..');
export const DEPLOY_DIR = path.join(ROOT, 'deploy');

/** One YAML document of a file under deploy/ (or docker-compose.yml). */
export interface Manifest {
  file: string;
  doc: any;
}

/** Every .yaml/.yml file below `dir`, relative to the repository root. */
export function yamlFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...yamlFiles(full));
    else if (/\.ya?ml$/.test(entry.name)) out.push(path.relative(ROOT, full));
  }
  return out.sort();
}

/** Parses every document of a file; a YAML error fails with the file and the parser's message. */
export function parseYamlFile(file: string): Manifest[] {
  const docs = parseAllDocuments(fs.readFileSync(path.join(ROOT, file), 'utf8'), { merge: true });
  const list = Array.isArray(docs) ? docs : [docs];
  const manifests: Manifest[] = [];
  for (const doc of list) {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
    const value = doc.toJS();
    if (value !== null && value !== undefined) manifests.push({ file, doc: value });
  }
  return manifests;
}

/**
 * The environment variables the gateway reads, taken from the source of libs/config (the one
 * place configuration is read), so that a manifest cannot set a variable nobody reads.
 * `prefixes` are families such as WORKER_CONCURRENCY_<QUEUE>.
 */
export function configEnvNames(): { names: Set<string>; prefixes: string[] } {
  const dir = path.join(ROOT, 'libs', 'config', 'src');
  const names = new Set<string>();
  const prefixes: string[] = [];
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.ts') && !f.endsWith('.spec.ts'))) {
    const source = fs.readFileSync(path.join(dir, file), 'utf8');
    for (const m of source.matchAll(/\benv\.([A-Z][A-Z0-9_]*)\b/g)) names.add(m[1]);
    for (const m of source.matchAll(/\benv\[\s*['"]([A-Z][A-Z0-9_]*)['"]\s*\]/g)) names.add(m[1]);
    for (const m of source.matchAll(/\bread\.\w+\(\s*['"]([A-Z][A-Z0-9_]*)['"]/g)) names.add(m[1]);
    for (const m of source.matchAll(/\bread\.\w+\(\s*`([A-Z][A-Z0-9_]*_)\$\{/g)) prefixes.push(m[1]);
  }
  return { names, prefixes };
}

export function isConfigEnvName(name: string, known: { names: Set<string>; prefixes: string[] }): boolean {
  return known.names.has(name) || known.prefixes.some((p) => name.startsWith(p) && /^[A-Z0-9_]+$/.test(name.slice(p.length)));
}

/** The paths of every HTTP probe of a container, with the port each names. */
export function httpProbes(container: any): Array<{ kind: string; path: string; port: string | number }> {
  return ['livenessProbe', 'readinessProbe', 'startupProbe']
    .filter((kind) => container[kind]?.httpGet)
    .map((kind) => ({ kind, path: container[kind].httpGet.path, port: container[kind].httpGet.port }));
}

/** The container port a probe names (by name or number). */
export function containerPort(container: any, port: string | number): number | undefined {
  const ports: Array<{ name?: string; containerPort: number }> = container.ports ?? [];
  return typeof port === 'number' ? ports.find((p) => p.containerPort === port)?.containerPort : ports.find((p) => p.name === port)?.containerPort;
}

/** A Go-style duration of docker compose (`30s`, `1m30s`, `500ms`) in seconds. */
export function composeDurationSeconds(value: string): number {
  let total = 0;
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/g;
  let matched = '';
  for (const m of value.matchAll(re)) {
    matched += m[0];
    const n = Number(m[1]);
    total += m[2] === 'h' ? n * 3600 : m[2] === 'm' ? n * 60 : m[2] === 's' ? n : n / 1000;
  }
  if (matched !== value) throw new Error(`not a compose duration: ${value}`);
  return total;
}

/** `${VAR:-default}` and `${VAR:?message}` of a compose value, as compose would fill them with VAR unset. */
export function composeValue(value: unknown, required: Record<string, string>): string {
  return String(value).replace(/\$\{([A-Z0-9_]+)(?::?([-?])([^}]*))?\}/g, (_all, name: string, op?: string, rest?: string) => {
    if (op === '?') {
      if (!(name in required)) throw new Error(`compose requires ${name}; give the test a value for it`);
      return required[name];
    }
    return op === '-' ? (rest ?? '') : '';
  });
}
