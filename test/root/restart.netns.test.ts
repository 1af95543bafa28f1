/**
 * `electrode-lab restart <node>`, the replica status in `status`, and issue
 * 20's two outcomes on a real 3-replica netns lab with the real replicas:
 *
 * - a replica restarted (all fast paths attached) while the other two are
 *   healthy recovers (VR Revisited 4.3: RECOVERING, the leader's snapshot,
 *   normal), gets fresh eBPF state, the lab fails over to it and commits, and
 *   the checker finds every acknowledged request at its op and the history
 *   linearizable;
 * - issue 20's scenario (baseline: follower 2 paused, writes acknowledged by
 *   the leader and follower 1, both killed, follower 1 restarted, follower 2
 *   resumed): no new view forms, and the log and `status` say why.
 *
 * The lab build's --lab-no-recovery (the old unsafe start) is refused by the
 * normal build; its end-to-end negative control is the bench's
 * --unsafe-no-recovery (bench.netns.test.ts is long; README "Restarts").
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { nativeBinaries } from '../../src/edges/build.js';
import { restartArgv } from '../../src/core/argv.js';
import { NodeBpfStats } from '../../src/lab/bpf.js';
import { LabPaths } from '../../src/edges/paths.js';
import { processAlive } from '../../src/edges/proc.js';
import { loadProcessRecords } from '../../src/edges/state.js';
import { IS_ROOT, SKIP_REASON, cliIn, leftovers, tempHome, waitFor } from '../helpers/netns.helpers.js';

describe('the lab-only switch', () => {
  it('the normal replica build refuses --lab-no-recovery and names the lab build', async () => {
    const r = await execa(nativeBinaries().replica, ['-c', '/nonexistent', '-i', '0', '--lab-no-recovery'], { reject: false });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/--lab-no-recovery exists only in the lab build \(native\/build\/lab\/replica.*--unsafe-no-recovery/);
  });
});

describe.skipIf(!IS_ROOT)(`restart on a netns lab (${IS_ROOT ? 'root' : SKIP_REASON})`, () => {
  const lab = 'rst';
  const home = tempHome('el-restart-');
  const cli = cliIn(home);
  const paths = new LabPaths(home, lab);
  const replicaRec = (node: string) => loadProcessRecords(paths).find((r) => r.node === node && r.name === 'replica')!;
  const log = (node: string) => readFileSync(paths.processLog(node, 'replica'), 'utf8');
  /** The replica's log since its last restart line (or all of it). */
  const life = (node: string) => {
    const t = log(node);
    const i = t.lastIndexOf(`electrode-lab restart: ${node}`);
    return i < 0 ? t : t.slice(i);
  };
  /** Since the last start line: this test's run of the lab. */
  const run = (node: string) => log(node).slice(log(node).lastIndexOf('electrode-lab start: run'));
  const statusOf = async () => {
    const s = await cli('--name', lab, 'status', '--json');
    expect(s.exitCode, s.stderr).toBe(0);
    return (JSON.parse(s.stdout) as { replicas: { node: string; status: string; pid?: number; incarnation: number }[] }).replicas;
  };
  const allNormal = async () => (await statusOf()).every((x) => x.status.startsWith('normal in view'));

  beforeAll(async () => {
    const r = await cli('--name', lab, 'up', '3', '--provider', 'netns', '--subnet', '10.78.20.0/24');
    expect(r.exitCode, r.stderr).toBe(0);
  });
  afterAll(async () => {
    await cli('--name', lab, 'stop');
    await cli('--name', lab, 'down');
    expect(await leftovers(lab, '02:4c:')).toEqual([]);
    rmSync(home, { recursive: true, force: true });
  });

  it('refuses what it cannot do, naming the fix, and changes nothing', async () => {
    const none = await cli('--name', lab, 'restart', 'replica1');
    expect(none.exitCode).toBe(1);
    expect(none.stderr).toMatch(/no replica was started on replica1.*electrode-lab start/);
    const unknown = await cli('--name', lab, 'restart', 'replica9');
    expect(unknown.exitCode).toBe(2);
    expect(unknown.stderr).toMatch(/RESTART_INPUT replica9: lab 'rst' has no node replica9; restart one of its replicas: replica0, replica1, replica2/);
    const client = await cli('--name', lab, 'restart', 'client0');
    expect(client.exitCode).toBe(2);
    expect(client.stderr).toMatch(/client0 is a client node, not a replica/);
    const notUp = await cli('--name', 'nosuchlab', 'restart', 'replica1');
    expect(notUp.exitCode).toBe(1);
    expect(notUp.stderr).toMatch(/lab 'nosuchlab' is not up; run `electrode-lab up/);
  });

  it('a replica restarted while the other two are healthy recovers with fresh eBPF state; the lab fails over to it, commits, and loses nothing', async () => {
    const dump = (i: number) => join(home, `committed-${i}.log`);
    const s = await cli('--name', lab, 'start', '--all', ...[0, 1, 2].flatMap((i) => ['--replica-args', `${i}:--dump-log ${dump(i)}`]));
    expect(s.exitCode, s.stderr).toBe(0);
    await waitFor('every replica normal in view 0', allNormal, 15_000);
    const h1 = join(home, 'h1.jsonl');
    const a1 = join(home, 'a1.acks');
    const c1 = await cli('--name', lab, 'client', '-n', '400', '-t', '2', '--history', h1, '--ack-log', a1);
    expect(c1.exitCode, c1.stderr).toBe(0);
    const replied = async () => {
      const st = await cli('--name', lab, 'stats', '--json');
      expect(st.exitCode, st.stderr).toBe(0);
      return (JSON.parse(st.stdout) as { nodes: NodeBpfStats[] }).nodes.find((n) => n.node === 'replica1')!.reply.replied;
    };
    expect(await replied()).toBeGreaterThan(0);
    const before = replicaRec('replica1');

    const running = await cli('--name', lab, 'restart', 'replica1');
    expect(running.exitCode).toBe(1);
    expect(running.stderr).toMatch(new RegExp(`replica1 is still running \\(pid ${before.pid}\\).*kill -9 ${before.pid}.*--force`));
    expect(replicaRec('replica1').pid).toBe(before.pid);

    process.kill(before.pid, 'SIGKILL');
    await waitFor('replica1 to die', () => !processAlive(before.pid), 5000);
    expect((await statusOf()).find((r) => r.node === 'replica1')!.status).toBe('dead');

    const r = await cli('--name', lab, 'restart', 'replica1');
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/fresh eBPF state on replica1/);
    const after = replicaRec('replica1');
    expect(after.pid).not.toBe(before.pid);
    expect(after.argv).toEqual(restartArgv(before.argv, 1)); // the same flags, its own dump file
    expect(after.argv).toContain(`${dump(1)}.1`);
    expect(after.incarnation).toBe(1);
    expect(r.stdout).toMatch(new RegExp(`replica1  pid ${after.pid}  incarnation 1  normal in view 0 \\(leader 0\\)`));
    // VR Revisited 4.3: recovering first, the leader's state, then normal
    const l1 = life('replica1');
    expect(l1).toMatch(/replica1 info: recovering: started without state; asking the other 2 replicas \(nonce 0x[0-9a-f]+\)/);
    expect(l1).toMatch(/replica1 info: snapshot: installed op \d+ .* from replica 0/);
    expect(l1).toMatch(/replica1 info: view 0 normal \(recovered from replica 0\)/);
    expect(l1.indexOf('recovering:')).toBeLessThan(l1.indexOf('recovered from replica 0'));
    // the old life's lines stay before the restart line
    expect(log('replica1').indexOf('electrode-lab restart: replica1 (incarnation 1)')).toBeGreaterThan(log('replica1').indexOf('replica 1 ready on'));
    // fresh eBPF state: replica1's maps are new (its fast-reply counter starts again from 0)
    expect(await replied()).toBe(0);
    const st = await statusOf();
    expect(st.map((x) => x.status)).toEqual(['normal in view 0 (leader 0)', 'normal in view 0 (leader 0)', 'normal in view 0 (leader 0)']);
    expect(st.find((x) => x.node === 'replica1')).toMatchObject({ pid: after.pid, incarnation: 1 });

    // the leader dies: the recovered replica and replica2 form view 1, holding every acknowledged write
    process.kill(replicaRec('replica0').pid, 'SIGKILL');
    await waitFor('view 1 to form', () => /info: view 1 normal/.test(life('replica1')) && /info: view 1 normal/.test(run('replica2')), 15_000);
    const h2 = join(home, 'h2.jsonl');
    const a2 = join(home, 'a2.acks');
    const c2 = await cli('--name', lab, 'client', '-n', '400', '-t', '2', '--history', h2, '--ack-log', a2);
    expect(c2.exitCode, c2.stderr).toBe(0);
    expect(c2.stdout).toMatch(/Completed 400 requests/);
    // the recovered replica leads view 1 (so its fast reply, a follower's, has nothing to answer)
    expect((await statusOf()).map((x) => x.status)).toEqual(['dead', 'normal in view 1 (leader 1)', 'normal in view 1 (leader 1)']);
    // the checker: both runs as one history; every ack of both at its op in the survivors' committed logs
    const h = join(home, 'h.jsonl');
    const a = join(home, 'a.acks');
    writeFileSync(h, readFileSync(h1, 'utf8') + readFileSync(h2, 'utf8'));
    writeFileSync(a, readFileSync(a1, 'utf8') + readFileSync(a2, 'utf8'));
    await cli('--name', lab, 'stop'); // flushes the dumps
    const chk = await cli('check-history', h, '--acks', a, '--committed', dump(2), `${dump(1)}.1`);
    expect(chk.stdout).toMatch(/^linearizable: \d+ ops/m);
    const acked = /acknowledged: (\d+), lost: 0 against 2 committed log\(s\)/.exec(chk.stdout);
    expect(acked, chk.stdout).not.toBeNull();
    expect(Number(acked![1])).toBeGreaterThanOrEqual(800);
    expect(chk.exitCode, chk.stdout).toBe(0);
  });

  it("issue 20's scenario: two replicas lost their state, so no new view forms, and the log and status say why", async () => {
    await cli('--name', lab, 'stop'); // whatever an earlier case left running
    const s = await cli('--name', lab, 'start');
    expect(s.exitCode, s.stderr).toBe(0);
    await waitFor('every replica normal in view 0', allNormal, 15_000);
    const r2 = replicaRec('replica2');
    process.kill(r2.pid, 'SIGSTOP');
    try {
      // acknowledged by the leader and follower 1 alone
      const c = await cli('--name', lab, 'client', '-n', '300');
      expect(c.exitCode, c.stderr).toBe(0);
      const old = ['replica0', 'replica1'].map(replicaRec);
      for (const p of old) process.kill(p.pid, 'SIGKILL');
      await waitFor('replica0 and replica1 to die', () => old.every((p) => !processAlive(p.pid)), 5000);
      const r = await cli('--name', lab, 'restart', 'replica1', '--wait-ms', '2000');
      expect(r.exitCode).toBe(1);
      expect(r.stderr).toMatch(/replica1 restarted \(pid \d+\) but is not normal after 2s: recovering; it takes part in nothing until it recovers/);
      const resumedAt = Date.now();
      process.kill(r2.pid, 'SIGCONT');
      // replica2 (the only state left) answers; replica1 still cannot complete: it needs f+1 normal replicas with the leader
      const stuck = /replica1 error: (recovering for \d+ s and cannot complete: .*This round: .*replica 2: (normal in view|not normal)[^\n]*)/;
      await waitFor('replica1 to say why it cannot recover, with replica2 answering', () => stuck.test(life('replica1')), 15_000);
      await waitFor('replica2 to give up on leader 0 and start a view change', () => /replica2 info: view change: view 0 -> 1/.test(run('replica2')), 15_000);
      // a later round: after replica2's view change began, replica1 still refuses
      const errorsAfter = () => [...life('replica1').matchAll(/^(\d+\.\d+) \S+ replica1 error: recovering for \d+ s and cannot complete/gm)].filter((m) => Number(m[1]) * 1000 > resumedAt);
      await waitFor('two error rounds since replica2 resumed', () => errorsAfter().length >= 2, 15_000);
      expect(life('replica1')).not.toMatch(/view \d+ normal/);
      expect(run('replica2')).not.toMatch(/view [1-9]\d* normal/);
      const st = await statusOf();
      expect(st.find((x) => x.node === 'replica1')!.status).toMatch(/^recovering: recovering for \d+ s and cannot complete: it needs 2 replicas in normal status, among them the leader of the latest view/);
      expect(st.find((x) => x.node === 'replica2')!.status).toMatch(/^view change to view \d+$/);
      expect(st.find((x) => x.node === 'replica0')!.status).toBe('dead');
      const human = await cli('--name', lab, 'status');
      expect(human.stdout).toMatch(/replica1: recovering: recovering for \d+ s and cannot complete.*\(pid \d+, restart 1\)/);
    } finally {
      try {
        process.kill(r2.pid, 'SIGCONT');
      } catch {
        /* gone already */
      }
      await cli('--name', lab, 'stop');
    }
  });
});
