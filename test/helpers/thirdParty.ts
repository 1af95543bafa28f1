/**
 * The read-only third-party snapshots (shared/third_party/, beside the
 * project's checkout) that some tests run against. A user's clone has no
 * shared/ folder: those tests skip, naming the folder they looked for.
 * $ELECTRODE_LAB_THIRD_PARTY points elsewhere.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

export function thirdPartyDir(name: string): string {
  if (process.env.ELECTRODE_LAB_THIRD_PARTY) return join(process.env.ELECTRODE_LAB_THIRD_PARTY, name);
  // walk up from the checkout: /work/main/../shared and /work/wt/<tree>/../../shared both occur
  let dir = join(import.meta.dirname, '..', '..');
  for (let i = 0; i < 4; i++) {
    const p = join(dir, 'shared', 'third_party', name);
    if (existsSync(p)) return p;
    dir = dirname(dir);
  }
  return join(import.meta.dirname, '..', '..', '..', 'shared', 'third_party', name);
}
