/**
 * Issue 21's scenario on a 3-replica netns lab, baseline arm (ASan builds, no
 * eBPF): both followers stopped, the client node fires 56-byte PrepareOKs
 * {replica = follower 1, view = 0, opnum near 2^64-1} at the leader while a
 * client writes. Once, one such stream committed every write the leader
 * logged and the next view lost them all. Now nothing may be acknowledged
 * while both followers are stopped, whether the lie comes from the client's
 * own address (dropped as spoofed) or with follower 1's IP address and port
 * forged in a raw frame (the address check passes; dropped as an ack beyond
 * the leader's log). Afterwards the lab goes on with nothing lost.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clients } from '../../src/core/plan.js';
import { ep, ipPort, isRoot, labCluster, send, TestLab, upLab } from '../helpers/bpf.helpers.js';
import { buildNative, processAlive, ProviderLauncher, TestCluster, waitFor } from '../helpers/cluster.js';

/** near 2^64-1: with --count the sender numbers its datagrams from here up */
const TOP_OPS = String(2n ** 64n - 256n);
const PREPARE_OK = '4';

describe.skipIf(!isRoot)('forged PrepareOKs while both followers are stopped (issue 21)', () => {
  let lab: TestLab;
  let scratch: string;
  let launcher: ProviderLauncher;
  let c: TestCluster;

  beforeAll(async () => {
    await buildNative();
    scratch = mkdtempSync(join(tmpdir(), 'el-forge-'));
    lab = await upLab('fg', 3);
    ({ launcher, cluster: c } = labCluster(lab, scratch, 'replica-fg'));
    await c.start();
  }, 180_000);

  afterAll(async () => {
    for (const i of [1, 2]) if (c?.alive(i)) c.resume(i);
    await launcher?.cleanup();
    await lab?.down();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }, 120_000);

  it('acknowledges nothing, counts the forgeries as dropped, and loses nothing after the leader dies', async () => {
    const warm = await c.runClient(['-n', '100', '-t', '2']);
    expect(warm.run.exitCode, warm.run.stderr).toBe(0);
    const client = clients(lab.plan)[0]!;
    const [leader, f1] = lab.r;
    c.pause(1);
    c.pause(2);
    // the client's own address (another port: the client binds its own), and follower 1's IP and port in a raw frame (the client's MAC, so the
    // lab bridge keeps follower 1 where it is)
    const lie = ['--type', PREPARE_OK, '--replica', '1', '--view', '0', '--opnum', TOP_OPS, '--count', '200'];
    const fromClient = () => send(client, ['udp', '--src', `${client.ip},${client.port + 7}`, '--dst', ipPort(leader!), ...lie]);
    const asFollower = () => send(client, ['raw', '--ifname', client.ifname, '--src', `${client.mac},${f1!.ip},${f1!.port}`, '--dst', ep(leader!), ...lie]);
    let writing = true;
    const forging = (async () => {
      let rounds = 0;
      while (writing || rounds < 2) {
        await fromClient();
        await asFollower();
        rounds++;
      }
      return rounds;
    })();
    // a count run stops at its first request that gets no reply: its ack log holds what was acknowledged
    const during = await c.runClient(['-n', '50', '-t', '4', '--timeout-ms', '100', '--max-retries', '20']).finally(() => {
      writing = false;
    });
    expect(await forging).toBeGreaterThanOrEqual(2);
    expect(during.acks, 'writes acknowledged while both followers were stopped').toEqual([]);
    expect(during.json.completed).toBe(0);
    expect(c.log(0)).toMatch(/spoofed: dropped a type-4 message naming replica 1 from/);
    expect(c.log(0)).toMatch(/beyond/);

    // the leader stops (its exit line has the counters), the followers come back and form a view
    const pid = c.pids[0]!;
    process.kill(pid, 'SIGTERM');
    c.killed.add(0);
    await waitFor('the leader to exit after SIGTERM', () => !processAlive(pid), 15_000);
    const m = /stats: rx \d+, malformed \d+, spoofed (\d+)/.exec(c.log(0));
    expect(m, c.log(0).slice(-2000)).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThanOrEqual(400);
    const beyond = /acks beyond the log (\d+)/.exec(c.log(0));
    expect(beyond, c.log(0).slice(-2000)).not.toBeNull();
    expect(Number(beyond![1])).toBeGreaterThanOrEqual(400);
    c.resume(1);
    c.resume(2);
    const after = await c.runClient(['-n', '100', '-t', '2']);
    expect(after.run.exitCode, after.run.stderr).toBe(0);
    expect(after.json.completed).toBe(100);
    expect(c.highestNormalView()).toBeGreaterThanOrEqual(1);
    expect(await c.settleAndCheck([...warm.acks, ...during.acks, ...after.acks])).toEqual([]);
  }, 240_000);
});
