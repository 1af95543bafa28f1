/**
 * The real replica binary's log lines (native/src/util.c, el_log) parse with
 * src/logline.ts, the one parser every reader of replica logs uses. Runs the
 * replica on loopback (no root): it logs "ready", then its exit line on SIGTERM.
 */
import { execa } from 'execa';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { nativeBinaries } from '../../src/build.js';
import { logLines } from '../../src/logline.js';
import { runSegments } from '../../src/labs/logs.js';
import { waitFor } from '../netns.helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'el-logline-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('replica log lines, from the real binary', () => {
  const bin = nativeBinaries().replica;
  it.skipIf(!existsSync(bin))('every line: epoch, the same instant in UTC, replica0, a level', async () => {
    const port = 40000 + (process.pid % 20000);
    const cfg = join(dir, 'config.txt');
    writeFileSync(cfg, `f 1\nreplica 127.0.0.1:${port}\nreplica 127.0.0.1:${port + 1}\nreplica 127.0.0.1:${port + 2}\n`);
    const p = execa(bin, ['-c', cfg, '-i', '0'], { reject: false });
    let err = '';
    p.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    await waitFor('the replica to log ready', () => / ready on 127\.0\.0\.1/.test(err), 10_000);
    p.kill('SIGTERM');
    const r = await p;
    expect(r.exitCode, r.stderr).toBe(0);
    const raw = String(r.stderr).split('\n').filter(Boolean);
    const lines = logLines(String(r.stderr));
    expect(lines.length).toBe(raw.length);
    // a replica that starts without state first says it recovers, then that it is ready
    for (const l of raw) expect(l).toMatch(/^\d+\.\d{6} \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z replica0 (info|warn|error): /);
    expect(raw.some((l) => / replica0 info: replica 0 ready on /.test(l))).toBe(true);
    for (const l of lines) {
      expect(l.tag).toBe('replica0');
      // the UTC field is the epoch's instant, to the microsecond
      const [s, us] = l.utc!.slice(0, -1).split('.') as [string, string];
      expect(Date.parse(`${s}Z`) / 1000 + Number(us) / 1e6).toBeCloseTo(l.t, 5);
    }
    expect(runSegments(String(r.stderr))[0]!.events.map((e) => e.kind)).toEqual(['ready', 'stopping', 'exit']);
  });
});
