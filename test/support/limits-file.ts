import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** A rate limits file (RATE_LIMITS_FILE) with this YAML, in a fresh temp folder; returns its path. */
export function limitsFile(yaml: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gw-limits-'));
  const file = path.join(dir, 'limits.yaml');
  fs.writeFileSync(file, yaml);
  return file;
}
