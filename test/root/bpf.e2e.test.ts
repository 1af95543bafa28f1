/**
 * End to end: the native replica (ASan build) with the real eBPF fast paths
 * in a real netns lab, for 3, 5 and 7 replicas: each fast path alone and
 * all three together commit 10,000 operations with identical logs on every
 * replica, and the kernel counters prove the fast path fired. A leader kill
 * mid-run ends with a correct log on every survivor, and the kernel state
 * (el_ctrl) follows the view change: the new leader's fast paths fire.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { attachFastPaths, FastPaths } from '../../src/lab/bpf.js';
import { openLab } from '../../src/providers/lab.js';
import { isRoot, labCluster, show, stats, Stats, TestLab, upLab } from '../helpers/bpf.helpers.js';
import { buildNative, ProviderLauncher, TestCluster } from '../helpers/cluster.js';

const OPS = 10_000;
const ARMS: [string, FastPaths][] = [
  ['broadcast', { broadcast: true, quorum: false, reply: false }],
  ['quorum', { broadcast: false, quorum: true, reply: false }],
  ['reply', { broadcast: false, quorum: false, reply: true }],
  ['all', { broadcast: true, quorum: true, reply: true }],
];

const replicaFlags = (fp: FastPaths) => [...(fp.broadcast ? ['--fast-broadcast'] : []), ...(fp.quorum ? ['--fast-quorum'] : []), ...(fp.reply ? ['--fast-reply'] : [])];

describe.skipIf(!isRoot).each([3, 5, 7])('%i replicas, native replica + eBPF fast paths', (n) => {
  let lab: TestLab;
  let scratch: string;
  let seq = 0;
  const launchers: ProviderLauncher[] = [];

  beforeAll(async () => {
    await buildNative();
    scratch = mkdtempSync(join(tmpdir(), 'el-bpf-e2e-'));
    lab = await upLab(`e${n}`, n);
  }, 180_000);

  afterEach(async () => {
    // a failed run must not leave replicas holding the ports for the next one
    for (const l of launchers.splice(0)) await l.cleanup();
  }, 60_000);

  afterAll(async () => {
    await lab?.down();
    rmSync(scratch, { recursive: true, force: true });
  }, 120_000);

  async function cluster(fp: FastPaths): Promise<TestCluster> {
    // a fresh attach per run: replaces the previous programs, counters start at 0
    // the netns default hook (TC ingress); test/root/hostile.netns.test.ts runs a lab on native XDP
    await attachFastPaths(openLab(lab.provider, lab.plan, lab.ctx), fp);
    const { launcher, cluster: c } = labCluster(lab, join(scratch, `run${seq}`), `replica-b${seq++}`);
    launchers.push(launcher);
    await c.start((i) => ['--bpf-pin-dir', lab.r[i]!.pinDir, ...replicaFlags(fp)]);
    return c;
  }

  async function allStats(): Promise<Stats[]> {
    return Promise.all(lab.r.map((r) => stats(r)));
  }

  function expectFired(arm: string, s: Stats[], c: TestCluster, leader = 0): void {
    const followers = s.filter((_, i) => i !== leader);
    const fp = ARMS.find(([a]) => a === arm)![1];
    const ctx = JSON.stringify(s.map((x) => ({ b: x.broadcast, q: x.quorum, r: x.reply })));
    if (fp.broadcast) expect(s[leader]!.broadcast.cloned, ctx).toBeGreaterThan(0);
    else expect(s[leader]!.broadcast.cloned, ctx).toBe(0);
    if (fp.quorum) expect(s[leader]!.quorum.dropped, ctx).toBeGreaterThan(0);
    else expect(s[leader]!.quorum.seen, ctx).toBe(0);
    const replied = followers.reduce((a, x) => a + x.reply.replied, 0);
    if (fp.reply) {
      expect(replied, ctx).toBeGreaterThan(0);
    } else {
      expect(replied, ctx).toBe(0);
    }
    // errors are errors: a full ring or a gap is counted as a fallback, never here
    for (const x of s) {
      expect(x.dispatch.errors + x.egress.errors + x.broadcast.errors + x.quorum.errors + x.reply.errors, ctx).toBe(0);
    }
  }

  for (const [arm, fp] of ARMS) {
    it(`${arm}: ${OPS} operations commit, identical logs on every replica`, async () => {
      const c = await cluster(fp);
      const r = await c.runClient(['-n', String(OPS), '-t', '4']);
      expect(r.run.exitCode, r.run.stderr).toBe(0);
      expect(r.json.completed).toBe(OPS);
      expect(r.acks).toHaveLength(OPS);
      expectFired(arm, await allStats(), c);
      expect(await c.settleAndCheck(r.acks)).toEqual([]);
      expect(c.highestNormalView()).toBe(0);
      // followers appended ops from the kernel's ring buffer (their exit stats line says how many)
      if (fp.reply) {
        for (let i = 1; i < n; i++) {
          expect(c.log(i), `replica${i}`).toMatch(/fast-reply records [1-9]\d* \(late 0, gap 0\)/);
        }
      }
    }, 120_000);
  }

  it('all fast paths, leader killed mid-run: survivors end with a correct log; el_ctrl follows the view change and the new leader uses the fast paths', async () => {
    const c = await cluster(ARMS[3]![1]);
    const client = c.runClient(['-n', String(OPS), '-t', '4']);
    await c.waitCommitted(0, 2000);
    await c.kill(0);
    const r = await client;
    expect(r.run.exitCode, r.run.stderr).toBe(0);
    expect(r.acks).toHaveLength(OPS);
    const view = c.highestNormalView();
    expect(view).toBeGreaterThanOrEqual(1);
    const leader = view % n;
    for (const i of c.survivors()) {
      const st = await show(lab.r[i]!);
      const ctrl = (st as unknown as { ctrl: { view: number; status: number } }).ctrl;
      expect(ctrl, `replica${i}`).toMatchObject({ view, status: 0 });
    }
    const s = await allStats();
    expect(s[leader]!.broadcast.cloned).toBeGreaterThan(0);
    expect(s[leader]!.quorum.passed).toBeGreaterThan(0);
    expect(await c.settleAndCheck(r.acks)).toEqual([]);
    // every record the survivors' kernels acknowledged arrived while its view was current
    for (const i of c.survivors()) expect(c.log(i), `replica${i}`).toMatch(/fast-reply records \d+ \(late 0, gap 0\)/);
  }, 120_000);
});
