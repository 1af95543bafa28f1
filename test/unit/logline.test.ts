/**
 * The real replica binary's log lines (native/src/util.c, el_log) parse with
 * src/core/logline.ts, the one parser every reader of replica logs uses. Runs the
 * replica on loopback (no root): it logs "ready", then its exit line on SIGTERM.
 */
import { execa } from 'execa';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { nativeBinaries } from '../../src/edges/build.js';
import { exitStats, logLines } from '../../src/core/logline.js';
import { lastNormalView, runSegments } from '../../src/course/logs.js';
import { waitFor } from '../helpers/netns.helpers.js';

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
    // alone, it never completes recovery: it says it started recovering, is ready, stops
    expect(runSegments(String(r.stderr))[0]!.events.map((e) => e.kind)).toEqual(['recovering', 'ready', 'stopping', 'exit']);
    // the exit line's counters, by the names the bench's forge nemesis sums
    const st = exitStats(String(r.stderr))!;
    for (const k of ['rx', 'malformed', 'spoofed', 'acks beyond the log', 'view claims refused', 'view changes not joined (leader alive)', 'leader-only messages from another replica']) expect(st[k], k).toBe(0);
    expect(st['quorum marks']).toBe(0);
    expect(st.status).toBeUndefined();
  });

  it('exitStats: counts by name, details in parentheses left out, words skipped, the last exit line wins', () => {
    const line = (rx: number) => `1796644297.484086 2026-12-07T11:51:37.484086Z replica1 info: stats: rx ${rx}, malformed 2, fast-reply records 5 (late 1, gap 0), quorum marks 3 (forged 1), view changes not joined (leader alive) 7, status normal, view 4, last op 9`;
    expect(exitStats(`${line(1)}\n${line(10)}\n`)).toEqual({ rx: 10, malformed: 2, 'fast-reply records': 5, 'quorum marks': 3, 'view changes not joined (leader alive)': 7, view: 4, 'last op': 9 });
    expect(exitStats('1796644297.484086 2026-12-07T11:51:37.484086Z replica1 info: replica 1 ready on x\n')).toBeUndefined();
  });

  it.skipIf(!existsSync(bin))('a new cluster, then a follower killed and restarted: the recovery lines parse as events (src/course/logs.ts)', async () => {
    const port = 40003 + (process.pid % 20000);
    const cfg = join(dir, 'config3.txt');
    writeFileSync(cfg, `f 1\n${[0, 1, 2].map((i) => `replica 127.0.0.1:${port + i}\n`).join('')}`);
    const logs: string[] = ['', '', '', ''];
    const spawn = (i: number, slot: number) => {
      const p = execa(bin, ['-c', cfg, '-i', String(i)], { reject: false });
      p.stderr!.on('data', (b: Buffer) => (logs[slot] += b.toString()));
      return p;
    };
    const procs = [spawn(0, 0), spawn(1, 1), spawn(2, 2)];
    try {
      await waitFor('a new cluster in view 0', () => logs.slice(0, 3).every((l) => l.includes('view 0 normal (new cluster')), 10_000);
      const c = await execa(nativeBinaries().client, ['-c', cfg, '-n', '50', '--timeout-ms', '200'], { reject: false, timeout: 20_000 });
      expect(c.exitCode, c.stderr).toBe(0);
      procs[2]!.kill('SIGKILL');
      await procs[2];
      procs[2] = spawn(2, 3);
      await waitFor('replica 2 to recover', () => logs[3]!.includes('normal (recovered from replica'), 10_000);
    } finally {
      for (const p of procs) p.kill('SIGTERM');
      await Promise.all(procs);
    }
    const leader = runSegments(logs[0]!)[0]!.events;
    expect(leader.map((e) => e.kind)).toEqual(['recovering', 'ready', 'normal', 'snapshot-served', 'stopping', 'exit']);
    expect(leader[0]).toMatchObject({ why: 'started without state' });
    expect(leader[2]).toMatchObject({ view: 0, how: 'new cluster: every replica started without state', leader: 0, me: true, lastOp: 0 });
    expect(leader.find((e) => e.kind === 'snapshot-served')).toMatchObject({ to: 2 });
    const back = runSegments(logs[3]!)[0]!.events;
    expect(back.map((e) => e.kind)).toEqual(['recovering', 'ready', 'recovery-fetch', 'snapshot-installed', 'normal', 'stopping', 'exit']);
    const installed = back.find((e) => e.kind === 'snapshot-installed');
    // the 50 writes the client got acknowledged are in the snapshot, and the replica carries on from there
    expect(installed).toMatchObject({ from: 0, logTo: expect.any(Number) });
    expect(installed && installed.kind === 'snapshot-installed' && installed.op).toBeGreaterThanOrEqual(50);
    expect(back.find((e) => e.kind === 'normal')).toMatchObject({ view: 0, recoveredFrom: 0, leader: 0, me: false });
    expect(lastNormalView(runSegments(logs[3]!)[0])).toBe(0);
  });
});
