import * as fs from 'node:fs';
import * as path from 'node:path';

const PACKAGE_NAME = 'inference-gateway';
let cached: string | undefined;

/**
 * The gateway's version from its package.json, found by walking up from this file (it sits at
 * a different depth in the sources and in dist/). "unknown" when it cannot be found.
 */
export function gatewayVersion(): string {
  if (cached) return cached;
  let dir = __dirname;
  for (let i = 0; i < 8; i++) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === PACKAGE_NAME && typeof pkg.version === 'string') return (cached = pkg.version);
    } catch {
      // no package.json here: keep walking up
    }
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return (cached = 'unknown');
}
