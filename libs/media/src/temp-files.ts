import { promises as fsp } from 'node:fs';
import type { Dirent } from 'node:fs';
import { join } from 'node:path';

/** Deletes a file, ignoring a file that is already gone. */
export async function removeQuietly(path: string | undefined): Promise<void> {
  if (!path) return;
  try {
    await fsp.unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/**
 * Deletes download temp files (`dl-*`) in `tmpDir` last modified more than `olderThanMs` ago,
 * e.g. left behind by a worker that crashed mid-download. Returns how many were deleted; a missing
 * folder counts as empty.
 */
export async function sweepStaleTempFiles(tmpDir: string, olderThanMs: number): Promise<number> {
  let entries: Dirent[];
  try {
    entries = await fsp.readdir(tmpDir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  const cutoff = Date.now() - olderThanMs;
  let removed = 0;
  for (const entry of entries) {
    if (!entry.isFile() || !entry.name.startsWith('dl-')) continue;
    const path = join(tmpDir, entry.name);
    try {
      const stat = await fsp.stat(path);
      if (stat.mtimeMs >= cutoff) continue;
      await fsp.unlink(path);
      removed++;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return removed;
}
