/**
 * Writing files others may read at any moment (lab state, bench results,
 * course records): the whole file or the old one, never half of it.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** Writes `text` to a temporary file next to `file`, then renames it over `file` (making its folder if missing). */
export function writeAtomic(file: string, text: string): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}
