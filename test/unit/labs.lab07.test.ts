/**
 * Lab 07's figures come from the newest lab07 run's results.json: the
 * report's medians, speedups and leader CPU per op, and each arm's profile
 * record (costs, the heaviest non-idle symbols). Right answers copied from
 * it pass, within the tolerances a student's rounding needs; other figures,
 * the idle loop as "top symbol", and a run without profiles fail and say why.
 */
import { describe, expect, it } from 'vitest';
import { ResultsFile, TrialRecord } from '../../src/bench/types.js';
import { ProfileRecord } from '../../src/bench/profiling.js';
import { Evidence } from '../../src/course/evidence.js';
import { checkLab07, lab07Facts, LAB07_LAB } from '../../src/course/lab07.js';

const prof = (arm: string, costs: Record<string, number>, top: [string, number][]): ProfileRecord => ({
  svg: `profiles/3r-${arm}-8t.svg`,
  folded: `profiles/3r-${arm}-8t.folded`,
  samples: 2000,
  top: top.map(([symbol, share]) => ({ symbol, share })),
  costs,
});

function rec(seq: number, arm: 'baseline' | 'quorum' | 'reply', ops: number, leader: number, profile?: ProfileRecord): TrialRecord {
  return {
    seq, replicas: 3, arm, threads: 8, repeat: 0, nemesis: 'none', status: 'ok', crashed: false, startedAt: '2026-12-07T13:00:00Z', wallMs: 5000,
    requests: 0, completed: ops * 2, errors: 0, timeouts: 0, duration_s: 2, throughput_ops: ops,
    latency_us: { p50: 100, p90: 150, p95: 160, p99: 200, p999: 300, max: 400, mean: 110 }, clientExitCode: 0, crashes: [],
    cpu: { ops: ops * 2, windowMs: 2000, cpus: 2, machineUs: 1, perOpUs: 60, busy: 1, roles: { leader, followers: 10, client: 10, ksoftirqd: 0, other: 1 }, perFollower: [5, 6], softirqTicksUs: 1, ctxSwitchesPerOp: 3 },
    ...(profile ? { profile } : {}),
  } as TrialRecord;
}

const base = prof('baseline', { idle: 20.1, 'UDP receive': 5.2, 'UDP send': 31.4, 'context switches': 11.8, 'TC programs': 0 }, [['pv_native_safe_halt_[k]', 19.9], ['_raw_spin_unlock_irqrestore_[k]', 6.1], ['finish_task_switch.isra.0_[k]', 4.4], ['memcpy_orig_[k]', 2.0], ['el_handle', 1.5]]);
const quorum = prof('quorum', { idle: 19.0, 'UDP receive': 4.7, 'UDP send': 31.0, 'context switches': 11.5, 'TC programs': 2.9 }, [['pv_native_safe_halt_[k]', 19.0]]);
const reply = prof('reply', { idle: 25.0, 'UDP receive': 2.1, 'UDP send': 22.0, 'context switches': 5.3, 'TC programs': 3.3 }, [['pv_native_safe_halt_[k]', 25.0]]);

const results = (withProfiles = true): ResultsFile => ({
  kind: 'electrode-lab-bench-results', version: 1, id: '20261207T130000Z-lab07', lab: LAB07_LAB, createdAt: '2026-12-07T13:00:00Z', outcome: 'complete',
  options: { arms: ['baseline', 'quorum', 'reply'] } as ResultsFile['options'], skipped: [],
  records: [rec(0, 'baseline', 20000, 30.0, withProfiles ? base : undefined), rec(1, 'quorum', 20400, 29.1, withProfiles ? quorum : undefined), rec(2, 'reply', 27000, 21.6, withProfiles ? reply : undefined)],
});
const ev = (r = results()): Evidence => ({ logs: {}, stats: [], runs: [{ id: r.id, results: r, crashes: [] }] });

const right = {
  baseline: { ops_per_s: '20,000', leader_us_per_op: 30, udp_receive: 5.2, udp_send: 31.4, context_switches: 11.8 },
  quorum: { ops_per_s: 20400, vs_baseline: 1.02, leader_us_per_op: 29.1, udp_receive: 4.7, udp_send: 31, context_switches: 11.5, tc_programs: 2.9 },
  reply: { ops_per_s: 27000, vs_baseline: '1.35x', leader_us_per_op: 21.6, udp_receive: 2.1, udp_send: 22, context_switches: 5.3 },
  where: { top_symbol: '_raw_spin_unlock_irqrestore', top_share: 6.1, leader_time: 'sending Prepares and delivering them through the veth into the followers, and waking them up' },
  prune: { dropped_per_op: 1, why_little: 'the dropped PrepareOK arrives while the leader is already awake; receiving it was cheap and the TC programs cost about as much' },
  fast_reply: { why_pays: 'the followers no longer wake up, switch in, receive and send for each Prepare' },
  virtio: { driver_queues: 4, what_differs: 'native XDP on virtio-net drops the PrepareOK in the driver before an skb exists, on the leader CPU, saving allocation and the stack', experiment: 'a vagrant lab bench of baseline and quorum at 8 threads comparing leader CPU per op' },
};

const bad = (v: ReturnType<typeof checkLab07>) => v.items.filter((i) => i.status !== 'ok').map((i) => `${i.status} ${i.key}`);

describe('lab 07', () => {
  it('reads the arms from the newest lab07 run', () => {
    const f = lab07Facts(ev());
    expect([f.replicas, f.threads]).toEqual([3, 8]);
    expect(f.arms.quorum!.speedup).toBeCloseTo(1.02, 5);
    expect(f.arms.reply!.leaderUs).toBe(21.6);
  });
  it('passes the figures as results.json has them, and as a student rounds them', () => {
    expect(bad(checkLab07(right, ev()))).toEqual([]);
    const rounded = { ...right, baseline: { ...right.baseline, ops_per_s: 20100, udp_receive: 5 }, where: { ...right.where, top_symbol: 'finish_task_switch.isra.0_[k]', top_share: 4.4 } };
    expect(bad(checkLab07(rounded, ev()))).toEqual([]);
  });
  it('fails other figures, the idle loop and a fraction, saying why', () => {
    const wrong = {
      ...right,
      baseline: { ...right.baseline, udp_receive: 0.052, ops_per_s: 21000 },
      quorum: { ...right.quorum, vs_baseline: 2 },
      reply: { ...right.reply, context_switches: 11.8 },
      where: { ...right.where, top_symbol: 'pv_native_safe_halt', top_share: 19.9 },
    };
    const v = checkLab07(wrong, ev());
    expect(bad(v)).toEqual(['wrong baseline.ops_per_s', 'wrong baseline.udp_receive', 'wrong quorum.vs_baseline', 'wrong reply.context_switches', 'wrong where.top_symbol', 'wrong where.top_share']);
    const msg = (k: string) => v.items.find((i) => i.key === k)!.message;
    expect(msg('baseline.udp_receive')).toMatch(/that is a fraction; write the percent/);
    expect(msg('where.top_symbol')).toMatch(/that is the idle loop/);
    expect(msg('reply.context_switches')).toMatch(/profile\.costs\["context switches"\]` of the reply record in runs\/20261207T130000Z-lab07\/results\.json/);
  });
  it('empty answers are missing; a run without --profile names the flag', () => {
    const empty = checkLab07({}, ev());
    expect(empty.items.filter((i) => i.status === 'missing')).toHaveLength(empty.items.length - 1);
    const noProf = checkLab07(right, ev(results(false)));
    expect(noProf.items[0]).toMatchObject({ key: 'lab: a profiled bench run', status: 'missing' });
    expect(noProf.items[0]!.message).toMatch(/not run with --profile/);
    expect(bad(noProf)).toContain('missing baseline.udp_receive');
    expect(bad(noProf)).not.toContain('missing baseline.ops_per_s');
    const none = checkLab07(right, { logs: {}, stats: [], runs: [] });
    expect(none.items[0]!.message).toMatch(/no bench run of lab 'lab07' is recorded: run `electrode-lab bench --name lab07/);
  });
});
