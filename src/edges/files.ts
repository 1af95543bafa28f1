/**
 * Writing files others may read at any moment (lab state, bench results,
 * course records): the whole file or the old one, never half of it.
 */
import { closeSync, mkdirSync, openSync, readSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** Writes `text` to a temporary file next to `file`, then renames it over `file` (making its folder if missing). */
export function writeAtomic(file: string, text: string): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

/**
 * A file's text in chunks of about `chunkBytes` that each end at a line
 * break (the last one may not), for files larger than one string can hold.
 * A line longer than a chunk makes its chunk larger.
 */
export function readTextChunks(file: string, chunkBytes = 128 << 20): string[] {
  const fd = openSync(file, 'r');
  try {
    const out: string[] = [];
    let buf = Buffer.alloc(chunkBytes);
    let have = 0;
    for (;;) {
      if (have === buf.length) {
        const bigger = Buffer.alloc(buf.length * 2);
        buf.copy(bigger, 0, 0, have);
        buf = bigger;
      }
      const n = readSync(fd, buf, have, buf.length - have, null);
      have += n;
      if (n === 0) {
        if (have) out.push(buf.toString('utf8', 0, have));
        return out;
      }
      const cut = buf.lastIndexOf(0x0a, have - 1) + 1;
      if (cut === 0) continue; // no line break yet: read on into a larger buffer
      out.push(buf.toString('utf8', 0, cut));
      buf.copy(buf, 0, cut, have);
      have -= cut;
    }
  } finally {
    closeSync(fd);
  }
}
