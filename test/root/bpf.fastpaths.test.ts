/**
 * The three fast paths on a real kernel in a real netns lab (netns provider,
 * native XDP on veth, TC clsact egress), driven by raw frames and UDP
 * sockets from bpf/tests/elpkt.py inside the lab's namespaces, checked on
 * captured bytes (AF_PACKET) and on what user-space sockets receive.
 *
 * Ordering instead of sleeps: every listener stops at a sentinel frame
 * (opnum SENTINEL) sent after the frames under test along the same path,
 * so "exactly once" means "once before the sentinel".
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attachFastPaths, detachFastPaths } from '../../src/lab/bpf.js';
import { openLab } from '../../src/providers/lab.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PlanNode } from '../../src/core/plan.js';
import { replicaConfig } from '../../src/core/render.js';
import { ep, inNode, ipPort, isRoot, listen, loader, ROOT, send, SENTINEL, show, stats, TestLab, upLab, waitFor } from '../helpers/bpf.helpers.js';

const PREPARE = 3;
const PREPARE_OK = 4;
const COMMIT = 5;
const F_BCAST = 1;
const F_FROM_XDP = 2;
const F_QUORUM = 4;
const F_REPORT = 8;

type Frame = Record<string, unknown>;
const frames = (lines: Frame[]) => lines.filter((l) => l.opnum !== undefined && l.opnum !== SENTINEL);

/** Leader (replica0) sends ONE marked Prepare/Commit to the first follower; every follower captures. */
async function broadcastOnce(lab: TestLab, opnum: number, type: number, payloadLen: number): Promise<Map<string, Frame[]>> {
  const [leader, ...followers] = lab.r as [PlanNode, ...PlanNode[]];
  const caps = await Promise.all(followers.map((f) => listen(f, ['capture', '--ifname', f.ifname, '--port', String(f.port), '--until-opnum', String(SENTINEL), '--timeout', '20'])));
  await send(leader, ['udp', '--src', ipPort(leader), '--dst', ipPort(followers[0]!), '--type', String(type), '--flags', String(F_BCAST), '--opnum', String(opnum), '--payload-len', String(payloadLen)]);
  await send(leader, ['udp', '--src', ipPort(leader), ...followers.flatMap((f) => ['--dst', ipPort(f)]), '--type', String(COMMIT), '--opnum', String(SENTINEL)]);
  const out = new Map<string, Frame[]>();
  for (let i = 0; i < followers.length; i++) out.set(followers[i]!.name, frames(await caps[i]!.done));
  return out;
}

describe.skipIf(!isRoot)('broadcast (TC egress clone to every follower)', () => {
  for (const n of [3, 5, 7, 15]) {
    describe(`${n} replicas`, () => {
      let lab: TestLab;
      beforeAll(async () => {
        lab = await upLab(`b${n}`, n);
        await attachFastPaths(openLab(lab.provider, lab.plan, lab.ctx), { broadcast: true, quorum: false, reply: false }, 'native');
      });
      afterAll(async () => {
        await lab?.down();
      });

      it('tx checksum offload ON: each follower gets the Prepare exactly once, own MAC/IP/port, IP checksum valid, UDP pseudo-header sum right for CHECKSUM_PARTIAL', async () => {
        const got = await broadcastOnce(lab, 5, PREPARE, 40);
        const leader = lab.r[0]!;
        for (const f of lab.r.slice(1)) {
          const fr = got.get(f.name)!;
          expect(fr, f.name).toHaveLength(1);
          expect(fr[0]).toMatchObject({ dst_mac: f.mac, dst_ip: f.ip, dport: f.port, src_ip: leader.ip, sport: leader.port, ip_csum: 'ok', type: PREPARE, opnum: 5, flags: 0, body_len: 40 });
          // veth keeps CHECKSUM_PARTIAL: the field must hold the NEW pseudo-header sum (checked in elpkt)
          expect(['partial', 'ok']).toContain(fr[0]!.udp_csum);
        }
        const s = await stats(leader);
        expect(s.broadcast.cloned).toBe(n - 2);
        expect(s.broadcast.errors).toBe(0);
      });

      it('tx checksum offload OFF: the copies carry a complete, valid UDP checksum', async () => {
        const leader = lab.r[0]!;
        const r = await inNode(leader, ['ethtool', '-K', leader.ifname, 'tx', 'off']);
        expect(r.exitCode, r.stderr).toBe(0);
        const before = (await stats(leader)).broadcast.cloned;
        const got = await broadcastOnce(lab, 6, COMMIT, 13);
        for (const f of lab.r.slice(1)) {
          const fr = got.get(f.name)!;
          expect(fr, f.name).toHaveLength(1);
          expect(fr[0]).toMatchObject({ dst_mac: f.mac, dst_ip: f.ip, dport: f.port, ip_csum: 'ok', udp_csum: 'ok', type: COMMIT, opnum: 6, body_len: 13 });
        }
        expect((await stats(leader)).broadcast.cloned - before).toBe(n - 2);
      });
    });
  }
});

/** Quorum prune and fast reply run at the NIC's XDP hook or at TC ingress (veth's cheaper hook): both are tested. */
const HOOKS = ['xdp', 'tc'] as const;

describe.skipIf(!isRoot).each(HOOKS.flatMap((h) => [3, 5, 7].map((n) => [h, n] as const)))('quorum prune (%s on the leader), %i replicas', (hook, n) => {
  let lab: TestLab;
  beforeAll(async () => {
    lab = await upLab(`q${n}${hook[0]}`, n);
    await attachFastPaths(openLab(lab.provider, lab.plan, lab.ctx), { broadcast: false, quorum: true, reply: false }, 'native', hook);
  });
  afterAll(async () => {
    await lab?.down();
  });

  it('user space on the leader sees exactly the one PrepareOK that completes each quorum, MARKED; duplicates, extra acks dropped; stale views and unarmed ops go up UNMARKED; a retransmitted Prepare re-arms the slot', async () => {
    const [leader, ...followers] = lab.r as [PlanNode, ...PlanNode[]];
    const recv = await listen(leader, ['recv', '--bind', ipPort(leader), '--until-opnum', String(SENTINEL), '--timeout', '20']);
    const prepare = (opnum: number, count = 1) =>
      send(leader, ['raw', '--ifname', leader.ifname, '--src', ep(leader), '--dst', ep(followers[0]!), '--type', String(PREPARE), '--opnum', String(opnum), '--count', String(count)]);
    const ok = (f: PlanNode, opnum: number, view = 0, count = 1, flags = 0) =>
      send(f, ['udp', '--src', ipPort(f), '--dst', ipPort(leader), '--type', String(PREPARE_OK), '--replica', String(f.index), '--view', String(view), '--opnum', String(opnum), '--count', String(count), '--flags', String(flags)]);
    await prepare(1, 3);
    // follower by follower (ops 1..3 each): for every op the i-th distinct ack comes from followers[i-1]
    for (const f of followers) await ok(f, 1, 0, 3);
    await ok(followers[0]!, 2); // duplicate from the same follower, before the quorum... already counted
    await ok(followers[followers.length - 1]!, 3); // duplicate after the quorum
    await ok(followers[0]!, 77, 9); // future view: user space decides
    await ok(followers[1]!, 4); // no Prepare for op 4 left this node: passed up unmarked, one follower's ack
    await prepare(1); // retransmission after the quorum went up
    for (const f of followers) await ok(f, 1);
    await ok(followers[0]!, 3, 0, 1, F_REPORT); // a follower's periodic report: up, unmarked, uncounted
    await ok(followers[0]!, 5, 0, 1, F_QUORUM); // a forged mark from the wire: dropped by the dispatcher
    await send(followers[0]!, ['udp', '--src', ipPort(followers[0]!), '--dst', ipPort(leader), '--type', String(COMMIT), '--opnum', String(SENTINEL)]);
    const seen = frames(await recv.done);
    const key = (x: Frame) => `${String(x.view)}/${String(x.opnum)}/${Number(x.flags) & F_QUORUM ? 'marked' : 'unmarked'}`;
    const counts = new Map<string, number>();
    for (const x of seen) counts.set(key(x), (counts.get(key(x)) ?? 0) + 1);
    expect(Object.fromEntries(counts)).toEqual({ '0/1/marked': 2, '0/2/marked': 1, '0/3/marked': 1, '9/77/unmarked': 1, '0/4/unmarked': 1, '0/3/unmarked': 1 });
    // the one that went up is the f-th distinct ack
    const f = lab.plan.cluster.f;
    expect(seen.filter((x) => x.view === 0 && x.opnum === 2)[0]).toMatchObject({ replica: followers[f - 1]!.index, type: PREPARE_OK, flags: F_QUORUM });
    // the mark's checksum is valid: user space received it through a normal socket
    expect(seen.some((x) => x.opnum === 5)).toBe(false);
    const s = await stats(leader);
    expect(s.quorum.passed).toBe(2 + 1 + 1 + 1); // marked: op 1 twice, 2, 3; and the report
    expect(s.quorum.fallback).toBe(2); // view 9, op 4
    expect(s.quorum.dropped).toBe(4 * (n - 1) - 4 + 2); // 4 armed rounds of n-1 acks, 4 completed; 2 duplicates
    expect(s.quorum.errors).toBe(0);
    expect(s.dispatch.errors).toBe(1); // the forged mark
  });

  it('a PrepareOK naming one follower but sent from another address is never counted: it goes up unmarked and the genuine ack still completes the quorum', async () => {
    const [leader, ...followers] = lab.r as [PlanNode, ...PlanNode[]];
    const [named, liar] = followers as [PlanNode, PlanNode];
    const before = await stats(leader);
    const recv = await listen(leader, ['recv', '--bind', ipPort(leader), '--until-opnum', String(SENTINEL), '--timeout', '20']);
    await send(leader, ['raw', '--ifname', leader.ifname, '--src', ep(leader), '--dst', ep(named), '--type', String(PREPARE), '--opnum', '40']);
    // f acks are a quorum: counted, the lie alone would complete op 40 for a 3-replica cluster
    const f = lab.plan.cluster.f;
    for (let k = 0; k < f; k++) await send(liar, ['udp', '--src', ipPort(liar), '--dst', ipPort(leader), '--type', String(PREPARE_OK), '--replica', String(named.index), '--view', '0', '--opnum', '40']);
    for (const g of followers.slice(0, f)) await send(g, ['udp', '--src', ipPort(g), '--dst', ipPort(leader), '--type', String(PREPARE_OK), '--replica', String(g.index), '--view', '0', '--opnum', '40']);
    await send(named, ['udp', '--src', ipPort(named), '--dst', ipPort(leader), '--type', String(COMMIT), '--opnum', String(SENTINEL)]);
    const seen = frames(await recv.done).filter((x) => x.opnum === 40);
    // the lies went up as they came (user space drops them as spoofed), then the f-th genuine ack, marked
    expect(seen.map((x) => `${String(x.replica)}/${Number(x.flags) & F_QUORUM ? 'marked' : 'unmarked'}`)).toEqual([
      ...Array.from({ length: f }, () => `${String(named.index)}/unmarked`),
      `${String(followers[f - 1]!.index)}/marked`,
    ]);
    const s = await stats(leader);
    expect(s.quorum.errors - before.quorum.errors).toBe(f);
    expect(s.quorum.passed - before.quorum.passed).toBe(1);
  });
});

describe.skipIf(!isRoot).each(HOOKS)('fast reply (%s on a follower)', (hook) => {
  let lab: TestLab;
  beforeAll(async () => {
    lab = await upLab(`r${hook[0]}`, 3);
    await attachFastPaths(openLab(lab.provider, lab.plan, lab.ctx), { broadcast: false, quorum: false, reply: true }, 'native', hook);
  });
  afterAll(async () => {
    await lab?.down();
  });

  it('in-order Prepares are answered from the kernel (XDP_TX, or a TC redirect) with a valid PrepareOK and handed over in the ring buffer; gaps and other views go up unchanged', async () => {
    const [leader, f1] = lab.r as [PlanNode, PlanNode];
    // a replica renews this lease every tick; without one the kernel answers for nobody
    expect((await loader(f1, ['ctrl', '--pin-dir', f1.pinDir, '--lease-ms', '600000'])).exitCode).toBe(0);
    const show1 = await show(f1);
    if (hook === 'xdp') expect(show1.attached.find((a) => a.hook === 'xdp')).toMatchObject({ mode: 'native', prog: 'el_xdp_dispatch', current: true });
    else {
      expect(show1.attached.find((a) => a.hook === 'tc' && a.mode === 'ingress')).toMatchObject({ prog: 'el_tc_ingress', current: true });
      expect(show1.attached.some((a) => a.hook === 'xdp')).toBe(false);
    }
    const oks = await listen(leader, ['capture', '--ifname', leader.ifname, '--port', String(leader.port), '--until-opnum', '3', '--timeout', '20']);
    const upstairs = await listen(f1, ['recv', '--bind', ipPort(f1), '--until-opnum', String(SENTINEL), '--timeout', '20']);
    const prep = (opnum: number, extra: string[] = []) =>
      send(leader, ['raw', '--ifname', leader.ifname, '--src', ep(leader), '--dst', ep(f1), '--type', String(PREPARE), '--opnum', String(opnum), '--payload-len', '100', '--valid-entry', ...extra]);
    await send(leader, ['raw', '--ifname', leader.ifname, '--src', ep(leader), '--dst', ep(f1), '--type', String(PREPARE), '--opnum', '1', '--count', '3', '--payload-len', '100', '--valid-entry']);
    await prep(5); // gap: op 4 missing
    await prep(4, ['--view', '3']); // another view
    // (a Prepare too large for a ring record cannot exist at MTU 1500: the cap is the full 1472-byte UDP payload)
    await send(leader, ['raw', '--ifname', leader.ifname, '--src', ep(leader), '--dst', ep(f1), '--type', String(COMMIT), '--opnum', String(SENTINEL)]);

    const replies = frames(await oks.done);
    expect(replies.map((x) => x.opnum)).toEqual([1, 2, 3]);
    for (const x of replies) {
      expect(x).toMatchObject({ type: PREPARE_OK, flags: F_FROM_XDP, replica: f1.index, view: 0, src_mac: f1.mac, dst_mac: leader.mac, src_ip: f1.ip, dst_ip: leader.ip, sport: f1.port, dport: leader.port, ip_csum: 'ok', udp_csum: 'ok', udp_len: 64, body_len: 0 });
    }
    const up = frames(await upstairs.done);
    expect(up.map((x) => `${String(x.view)}/${String(x.opnum)}`)).toEqual(['0/5', '3/4']);

    const ring = await loader(f1, ['drain', '--pin-dir', f1.pinDir]);
    expect(ring.exitCode, ring.stderr).toBe(0);
    const recs = ring.stdout.trim().split('\n').map((l) => JSON.parse(l) as Frame);
    expect(recs).toEqual([1, 2, 3].map((op) => ({ len: 56 + 100, magic_ok: true, type: PREPARE, replica: 0, view: 0, opnum: op, aux: 1, payload_len: 100 })));
    expect((await show(f1)).fr_state).toEqual({ view: 0, last_op: 3 });
    const s = (await stats(f1)).reply;
    expect(s.replied).toBe(3);
    expect(s.fallback).toBe(2); // the gap and the other view: legitimate, not errors
    expect(s.errors).toBe(0);
  });

  it('a Prepare whose entries the replica would refuse, or one from an address that is not the leader it names, is not answered: it goes up to user space', async () => {
    const [leader, f1, f2] = lab.r as [PlanNode, PlanNode, PlanNode];
    expect((await loader(f1, ['ctrl', '--pin-dir', f1.pinDir, '--lease-ms', '600000'])).exitCode).toBe(0);
    const before = (await stats(f1)).reply;
    const next = (await show(f1)).fr_state!.last_op + 1; // in order, so the genuine one is answered
    const oks = await listen(leader, ['capture', '--ifname', leader.ifname, '--port', String(leader.port), '--until-opnum', String(next), '--timeout', '20']);
    const upstairs = await listen(f1, ['recv', '--bind', ipPort(f1), '--until-opnum', String(SENTINEL), '--timeout', '20']);
    const prepare = (from: PlanNode, extra: string[]) =>
      send(from, ['raw', '--ifname', from.ifname, '--src', ep(from), '--dst', ep(f1), '--type', String(PREPARE), '--replica', '0', '--opnum', String(next), '--payload-len', '100', ...extra]);
    await prepare(leader, []); // a valid header and 100 zero bytes of entries: the decoder refuses them
    await prepare(f2, ['--valid-entry']); // well formed, naming the leader, from replica 2's address
    await prepare(leader, ['--valid-entry']); // the genuine one: answered
    await send(leader, ['raw', '--ifname', leader.ifname, '--src', ep(leader), '--dst', ep(f1), '--type', String(COMMIT), '--opnum', String(SENTINEL)]);
    const replies = frames(await oks.done);
    expect(replies.map((x) => x.opnum)).toEqual([next]);
    expect(frames(await upstairs.done).map((x) => `${String(x.opnum)}/${String(x.payload_len)}`)).toEqual([`${String(next)}/100`, `${String(next)}/100`]);
    const s = (await stats(f1)).reply;
    expect(s.replied - before.replied).toBe(1);
    expect(s.errors - before.errors).toBe(2);
    expect((await show(f1)).fr_state).toEqual({ view: 0, last_op: next });
    expect((await loader(f1, ['drain', '--pin-dir', f1.pinDir])).exitCode).toBe(0);
  });

  it('a replica refuses pinned maps attached for another index or another cluster (the kernel would count quorums and check senders on their terms)', async () => {
    const [, f1] = lab.r as [PlanNode, PlanNode];
    const dir = mkdtempSync(join(tmpdir(), 'el-cfg-'));
    try {
      const lines = replicaConfig(lab.plan).split('\n');
      const run = async (cfg: string[], index: number) => {
        const file = join(dir, `c${index}-${cfg.length}.config`);
        writeFileSync(file, cfg.join('\n'));
        return inNode(f1, [join(ROOT, 'native', 'build', 'replica'), '-c', file, '-i', String(index), '--bpf-pin-dir', f1.pinDir, '--fast-reply']);
      };
      // replicas 1 and 2 swapped: this node's address is replica 2's now
      const swapped = [lines[0]!, lines[1]!, lines[3]!, lines[2]!, ...lines.slice(4)];
      const a = await run(swapped, 2);
      expect(a.exitCode).not.toBe(0);
      expect(a.stderr).toMatch(/were attached for replica 1 of 3 \(f=1\), this replica is 2 of 3 \(f=1\)/);
      // replica 0 on another port than the one the kernel checks senders against
      const moved = lines.map((l, i) => (i === 1 ? l.replace(/:(\d+)$/, (_m, p: string) => `:${Number(p) + 7}`) : l));
      const b = await run(moved, 1);
      expect(b.exitCode).not.toBe(0);
      expect(b.stderr).toMatch(/know replica 0 as [\d.]+:\d+, this replica's config says [\d.]+:\d+/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('without a live lease (the replica died or stalls) the kernel answers nothing', async () => {
    const [leader, f1] = lab.r as [PlanNode, PlanNode];
    expect((await loader(f1, ['ctrl', '--pin-dir', f1.pinDir, '--lease-ms', '0', '--status', '0'])).exitCode).toBe(0);
    const before = (await stats(f1)).reply;
    const upstairs = await listen(f1, ['recv', '--bind', ipPort(f1), '--until-opnum', String(SENTINEL), '--timeout', '20']);
    await send(leader, ['raw', '--ifname', leader.ifname, '--src', ep(leader), '--dst', ep(f1), '--type', String(PREPARE), '--opnum', '4']);
    await send(leader, ['raw', '--ifname', leader.ifname, '--src', ep(leader), '--dst', ep(f1), '--type', String(COMMIT), '--opnum', String(SENTINEL)]);
    expect(frames(await upstairs.done).map((x) => x.opnum)).toEqual([4]);
    const after = (await stats(f1)).reply;
    expect(after.replied).toBe(before.replied);
    expect(after.fallback).toBe(before.fallback + 1);
    expect((await loader(f1, ['ctrl', '--pin-dir', f1.pinDir, '--lease-ms', '600000'])).exitCode).toBe(0);
  });

  it('a view change in el_ctrl stops the fast reply until the replica re-arms it', async () => {
    const [leader, f1] = lab.r as [PlanNode, PlanNode];
    const r = await loader(f1, ['ctrl', '--pin-dir', f1.pinDir, '--status', '1']);
    expect(r.exitCode, r.stderr).toBe(0);
    const before = (await stats(f1)).reply.replied;
    const upstairs = await listen(f1, ['recv', '--bind', ipPort(f1), '--until-opnum', String(SENTINEL), '--timeout', '20']);
    await send(leader, ['raw', '--ifname', leader.ifname, '--src', ep(leader), '--dst', ep(f1), '--type', String(PREPARE), '--opnum', '4']);
    await send(leader, ['raw', '--ifname', leader.ifname, '--src', ep(leader), '--dst', ep(f1), '--type', String(COMMIT), '--opnum', String(SENTINEL)]);
    expect(frames(await upstairs.done).map((x) => x.opnum)).toEqual([4]);
    expect((await stats(f1)).reply.replied).toBe(before);
  });
});

describe.skipIf(!isRoot).each(HOOKS)('malformed and truncated frames at every hook (ingress: %s)', (hook) => {
  let lab: TestLab;
  beforeAll(async () => {
    lab = await upLab(`m${hook[0]}`, 3);
    await attachFastPaths(openLab(lab.provider, lab.plan, lab.ctx), { broadcast: true, quorum: true, reply: true }, 'native', hook);
  });
  afterAll(async () => {
    await lab?.down();
  });

  it('are counted as errors and passed, the programs stay attached, good frames still work', async () => {
    const [leader, f1] = lab.r as [PlanNode, PlanNode];
    // malformed inside consistent IP lengths: these cross the lab bridge
    const bad: string[][] = [
      ['--short', '10'], // el_hdr cut short
      ['--short', '55'], // one byte short of el_hdr
      ['--bad-magic'],
      ['--udp-len-extra', '60'], // UDP length says more than the datagram holds
    ];
    // truncated frames whose IP length lies: the lab switch forwards them (no br_netfilter in its
    // namespace), so the sender's TC egress and the receiver's ingress hook both see them
    const cut: string[][] = [['--truncate', '50'], ['--truncate', '97']];
    const cap = await listen(f1, ['capture', '--ifname', f1.ifname, '--port', String(f1.port), '--until-opnum', String(SENTINEL), '--timeout', '20']);
    for (const b of [...bad, ...cut]) {
      // leader -> follower with BCAST set: TC egress on the leader, then XDP (reply path) on the follower
      await send(leader, ['raw', '--ifname', leader.ifname, '--src', ep(leader), '--dst', ep(f1), '--type', String(PREPARE), '--flags', String(F_BCAST), '--opnum', '1', ...b]);
      // follower -> leader PrepareOK: XDP (quorum path) on the leader
      await send(f1, ['raw', '--ifname', f1.ifname, '--src', ep(f1), '--dst', ep(leader), '--type', String(PREPARE_OK), '--replica', '1', '--opnum', '1', ...b]);
    }
    await send(leader, ['raw', '--ifname', leader.ifname, '--src', ep(leader), '--dst', ep(f1), '--type', String(COMMIT), '--opnum', String(SENTINEL)]);
    const got = await cap.done;
    // the malformed frames reached the follower's stack unchanged (passed, not eaten, not "fixed")
    const passed = got.filter((x) => x.src_ip === leader.ip && x.opnum !== SENTINEL);
    expect(passed.map((x) => x.len)).toEqual([52, 97, 98, 98, 50, 97]);
    const sl = await stats(leader);
    const sf = await stats(f1);
    expect(sl.egress.errors).toBe(bad.length + cut.length);
    expect(sl.broadcast.cloned).toBe(0);
    expect(sl.dispatch.errors).toBe(bad.length + cut.length);
    expect(sf.dispatch.errors).toBe(bad.length + cut.length);
    expect(sf.egress.errors).toBe(bad.length + cut.length); // the follower's own malformed PrepareOKs leaving
    expect(sf.reply.seen + sf.reply.replied).toBe(0);
    expect(sl.quorum.seen).toBe(0);
    for (const n of [leader, f1]) {
      const s = await show(n);
      expect(s.attached.map((a) => `${a.hook}:${a.prog}`).sort()).toEqual(hook === 'xdp' ? ['tc:el_tc_egress', 'xdp:el_xdp_dispatch'] : ['tc:el_tc_egress', 'tc:el_tc_ingress']);
    }
    // an IP fragment of ours (a large DoViewChange, say) is a fallback, not an error
    await send(leader, ['raw', '--ifname', leader.ifname, '--src', ep(leader), '--dst', ep(f1), '--type', String(PREPARE), '--opnum', '1', '--more-fragments']);
    await waitFor('the fragment at the follower', async () => ((await stats(f1)).dispatch.fallback === 1 ? true : undefined));
    expect((await stats(f1)).dispatch.errors).toBe(bad.length + cut.length);
    // and a good Prepare is still answered from XDP (once a replica's lease is there)
    expect((await loader(f1, ['ctrl', '--pin-dir', f1.pinDir, '--lease-ms', '600000'])).exitCode).toBe(0);
    const oks = await listen(leader, ['capture', '--ifname', leader.ifname, '--port', String(leader.port), '--until-opnum', '1', '--timeout', '20']);
    await send(leader, ['raw', '--ifname', leader.ifname, '--src', ep(leader), '--dst', ep(f1), '--type', String(PREPARE), '--opnum', '1', '--payload-len', '40', '--valid-entry']);
    expect(frames(await oks.done)).toHaveLength(1);
  });
});

describe.skipIf(!isRoot)('attach after a crash, detach', () => {
  let lab: TestLab;
  beforeAll(async () => {
    lab = await upLab('c', 3);
  });
  afterAll(async () => {
    await lab?.down();
  });

  it('re-attaching over pins and programs a crashed run left behind replaces them', async () => {
    await attachFastPaths(openLab(lab.provider, lab.plan, lab.ctx), { broadcast: true, quorum: false, reply: false }, 'native', 'xdp');
    // simulate the crash: nobody detached; attach again with other fast paths
    await attachFastPaths(openLab(lab.provider, lab.plan, lab.ctx), { broadcast: false, quorum: true, reply: true }, 'native', 'xdp');
    for (const n of lab.r) {
      const s = await show(n);
      expect(s.pinned).toBe(true);
      expect(s.attached.filter((a) => a.hook === 'xdp')).toEqual([expect.objectContaining({ prog: 'el_xdp_dispatch', mode: 'native', current: true })]);
      expect(s.attached.filter((a) => a.hook === 'tc')).toEqual([expect.objectContaining({ prog: 'el_tc_egress', current: true })]);
    }
    // pins whose programs were removed by hand (half a crash) are replaced too
    const r0 = lab.r[0]!;
    expect((await inNode(r0, ['ip', 'link', 'set', 'dev', r0.ifname, 'xdp', 'off'])).exitCode).toBe(0);
    await attachFastPaths(openLab(lab.provider, lab.plan, lab.ctx), { broadcast: true, quorum: true, reply: true }, 'native', 'xdp');
    expect((await show(r0)).attached.filter((a) => a.current)).toHaveLength(2);
    // and switching to the TC ingress hook replaces the XDP program (no XDP left behind)
    await attachFastPaths(openLab(lab.provider, lab.plan, lab.ctx), { broadcast: true, quorum: true, reply: true }, 'native', 'tc');
    const tcOnly = await show(r0);
    expect(tcOnly.attached.map((a) => `${a.hook}:${a.mode}:${a.prog}`).sort()).toEqual(['tc:egress:el_tc_egress', 'tc:ingress:el_tc_ingress']);
  });

  it('detach leaves no pins and no programs, and is idempotent', async () => {
    await detachFastPaths(openLab(lab.provider, lab.plan, lab.ctx));
    await detachFastPaths(openLab(lab.provider, lab.plan, lab.ctx));
    for (const n of lab.r) {
      expect((await inNode(n, ['test', '-e', n.pinDir])).exitCode, n.pinDir).not.toBe(0);
      const link = await inNode(n, ['ip', '-d', '-j', 'link', 'show', 'dev', n.ifname]);
      expect(link.stdout).not.toMatch(/"xdp"/);
      const tc = await inNode(n, ['tc', 'filter', 'show', 'dev', n.ifname, 'egress']);
      expect(tc.stdout).not.toMatch(/el_tc_egress/);
      const tci = await inNode(n, ['tc', 'filter', 'show', 'dev', n.ifname, 'ingress']);
      expect(tci.stdout).not.toMatch(/el_tc_ingress/);
      const sw = await waitFor('switch side', async () => {
        const r = await inNode({ ...n, netns: lab.plan.network.switchNs }, ['ip', '-d', '-j', 'link', 'show', 'dev', n.switchIf]);
        return r.exitCode === 0 ? r.stdout : undefined;
      });
      expect(sw).not.toMatch(/el_xdp_pass/);
    }
  });
});
