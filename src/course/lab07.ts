/**
 * Lab 07 (why one fast path pays and another does not): every figure is in
 * the results.json of the student's newest `bench --profile` run on lab07:
 * each arm's median ops/s and speedup and the leader's CPU per op (the
 * `report` table), and from each arm's profile record the shares of the
 * kernel's UDP path, of context switches and of the TC programs, and the
 * heaviest symbols. Tolerances cover the rounding a student does when
 * copying; the explanations are only checked to be there.
 */
import { summarize, SummaryRow } from '../bench/stats.js';
import { ProfileRecord } from '../bench/profiling.js';
import { asInt, asNumber, Answers, answerAt } from './answers.js';
import { Checker, Verdict } from './check.js';
import { Evidence, newestRunOf } from './evidence.js';

export const LAB07_LAB = 'lab07';
export const LAB07_ARMS = ['baseline', 'quorum', 'reply'] as const;
export type Lab07Arm = (typeof LAB07_ARMS)[number];

/** The profile costs (src/bench/profiling.ts COST_PATHS names) the answers ask for, by answers key. */
export const LAB07_COSTS = { udp_receive: 'UDP receive', udp_send: 'UDP send', context_switches: 'context switches', tc_programs: 'TC programs' } as const;
type CostKey = keyof typeof LAB07_COSTS;
/** Which costs each arm's answers ask for: the prune's own programs only where it runs. */
const ARM_COSTS: Record<Lab07Arm, CostKey[]> = {
  baseline: ['udp_receive', 'udp_send', 'context_switches'],
  quorum: ['udp_receive', 'udp_send', 'context_switches', 'tc_programs'],
  reply: ['udp_receive', 'udp_send', 'context_switches'],
};

/** Leaf symbols of the idle loop: the CPU had nothing to do (not "where the time goes"). */
export const IDLE_SYMBOL = /idle|halt|mwait|swapper/i;
/** `udp_sendmsg_[k]`, `` `udp_sendmsg` ``, `udp_sendmsg()` -> `udp_sendmsg`. */
export const bareSymbol = (s: string) => s.trim().replace(/[`'"]/g, '').replace(/\(\)$/, '').replace(/_\[k\]$/, '');

export interface Lab07ArmFacts {
  ops: number;
  /** Over baseline (NaN for baseline). */
  speedup: number;
  leaderUs: number;
  /** The arm's profile, when it has samples. */
  profile?: ProfileRecord;
  /** Why there is no usable profile (not recorded, perf failed). */
  noProfile?: string;
}

export interface Lab07Facts {
  run?: string;
  replicas?: number;
  threads?: number;
  arms: Partial<Record<Lab07Arm, Lab07ArmFacts>>;
}

export function lab07Facts(ev: Evidence): Lab07Facts {
  const run = newestRunOf(ev, LAB07_LAB);
  if (!run) return { arms: {} };
  const rows = summarize(run.results).filter((r) => r.nemesis === 'none' && r.impl === 'ours' && (LAB07_ARMS as readonly string[]).includes(r.arm));
  // the README runs one size and one thread count; with more, the smallest size and the highest
  // thread count (the one --profile records) are the lab's
  const replicas = Math.min(...rows.map((r) => r.replicas));
  const threads = Math.max(...rows.filter((r) => r.replicas === replicas).map((r) => r.threads));
  const arms: Lab07Facts['arms'] = {};
  for (const arm of LAB07_ARMS) {
    const row: SummaryRow | undefined = rows.find((r) => r.replicas === replicas && r.threads === threads && r.arm === arm);
    if (!row || !Number.isFinite(row.throughput.median)) continue;
    const recs = run.results.records.filter((r) => r.replicas === replicas && r.threads === threads && r.arm === arm && (r.nemesis ?? 'none') === 'none' && r.profile);
    const good = recs.find((r) => r.profile!.samples > 0 && !r.profile!.problem)?.profile;
    const noProfile = good ? undefined : recs[0]?.profile?.problem ?? 'the run has no profile: it was not run with --profile';
    arms[arm] = { ops: row.throughput.median, speedup: row.speedup, leaderUs: row.leaderCpu, ...(good ? { profile: good } : {}), ...(noProfile ? { noProfile } : {}) };
  }
  return { run: run.id, ...(rows.length ? { replicas, threads } : {}), arms };
}

/** `12,763`, `12763`, `12 763` ops/s. */
function asCount(v: unknown): number | undefined {
  if (typeof v === 'string') {
    const s = v.trim().replace(/(?<=\d)[,_ ](?=\d{3}\b)/g, '').replace(/\s*(ops\/s|%)$/i, '');
    return asNumber(s);
  }
  return asNumber(v);
}

/** The non-idle symbols of a profile's top list, heaviest first. */
export function busySymbols(p: ProfileRecord): { symbol: string; share: number }[] {
  return p.top.filter((t) => !IDLE_SYMBOL.test(bareSymbol(t.symbol)));
}

/** How many of the heaviest non-idle symbols count as "the heaviest": near-ties swap places from run to run. */
export const TOP_ACCEPTED = 3;

export function checkLab07(answers: Answers, ev: Evidence): Verdict {
  const f = lab07Facts(ev);
  const c = new Checker(answers);
  const bench = '`electrode-lab bench --name lab07 --replicas 3 --arms baseline,quorum,reply --threads 8 --repeat 1 --duration 2 --profile` from the project folder (README, "The run")';
  const noRun = `no bench run of lab '${LAB07_LAB}' is recorded: run ${bench}`;
  const have = LAB07_ARMS.every((a) => f.arms[a]?.profile);
  c.fact(
    'a profiled bench run',
    have,
    `run ${f.run}: ${f.replicas} replicas, ${f.threads} client threads, a profile of each arm`,
    !f.run
      ? noRun
      : `run ${f.run} lacks ${LAB07_ARMS.filter((a) => !f.arms[a]?.profile).map((a) => `${a} (${f.arms[a]?.noProfile ?? 'no such trial'})`).join(', ')}: run ${bench} again (perf: \`apt-get install linux-perf\`)`,
  );
  const armFact = (arm: Lab07Arm) => (f.run ? `run ${f.run} has no ${arm} trial that finished: run ${bench} again` : noRun);
  const rj = f.run ? `runs/${f.run}/results.json` : 'the run\'s results.json';

  // Q1: the table
  for (const arm of LAB07_ARMS) {
    const a = f.arms[arm];
    c.value(`${arm}.ops_per_s`, {
      parse: asCount,
      expected: a?.ops,
      noFact: armFact(arm),
      form: 'ops per second (e.g. 12763)',
      where: `the "ops/s median" of arm ${arm} in \`electrode-lab report\` (within 1 %)`,
      equal: (x, e) => Math.abs(x - e) <= Math.max(1, e * 0.01),
      show: (x) => String(Math.round(x)),
    });
    if (arm !== 'baseline') {
      c.value(`${arm}.vs_baseline`, {
        parse: asNumber,
        expected: a && Number.isFinite(a.speedup) ? a.speedup : undefined,
        noFact: armFact(arm),
        form: 'a ratio (e.g. 1.23)',
        where: `the "vs baseline" column of \`electrode-lab report\` for arm ${arm}`,
        equal: (x, e) => Math.abs(x - e) <= 0.011,
        show: (x) => x.toFixed(2),
        mixUp: (x, e) => (Math.abs(x / 100 + 1 - e) <= 0.011 ? 'that is the change in percent; write the ratio (1.23 for +23 %)' : undefined),
      });
    }
    c.value(`${arm}.leader_us_per_op`, {
      parse: asNumber,
      expected: a && Number.isFinite(a.leaderUs) ? a.leaderUs : undefined,
      noFact: a ? `the ${arm} trial has no CPU figures (results.json \`cpu\`): run ${bench} again` : armFact(arm),
      form: 'microseconds per op (e.g. 21.4)',
      where: `the leader's figure (before the /) of "leader/follower us/op" in \`electrode-lab report\`, arm ${arm}`,
      equal: (x, e) => Math.abs(x - e) <= Math.max(0.15, e * 0.03),
      show: (x) => x.toFixed(1),
    });
    // Q2-Q4: the profile's shares
    for (const k of ARM_COSTS[arm]) {
      const name = LAB07_COSTS[k];
      const share = a?.profile?.costs[name];
      c.value(`${arm}.${k}`, {
        parse: asCount,
        expected: share,
        noFact: a ? `the ${arm} trial has no usable profile (${a.noProfile ?? '?'}): run ${bench}` : armFact(arm),
        form: 'a percent of all samples (e.g. 5.3)',
        where: `\`profile.costs["${name}"]\` of the ${arm} record in ${rj} (within 0.5)`,
        equal: (x, e) => Math.abs(x - e) <= 0.5,
        show: (x) => x.toFixed(1),
        mixUp: (x, e) => (x > 0 && x < 1 && Math.abs(x * 100 - e) <= 0.5 ? 'that is a fraction; write the percent (5.3, not 0.053)' : undefined),
      });
    }
  }

  // Q2: the heaviest symbol of the baseline profile
  const base = f.arms.baseline?.profile;
  const busy = base ? busySymbols(base) : [];
  const accepted = busy.slice(0, TOP_ACCEPTED);
  const noBase = f.arms.baseline ? `the baseline trial has no usable profile (${f.arms.baseline.noProfile ?? '?'}): run ${bench}` : armFact('baseline');
  const named = (s: string) => busy.find((t) => bareSymbol(t.symbol) === bareSymbol(s));
  c.value('where.top_symbol', {
    parse: (v) => (typeof v === 'string' && bareSymbol(v) ? bareSymbol(v) : undefined),
    expected: base ? bareSymbol(accepted[0]?.symbol ?? '') : undefined,
    noFact: noBase,
    form: 'a symbol name (e.g. udp_sendmsg)',
    where: `\`profile.top\` of the baseline record in ${rj}: the heaviest entries that are not the idle loop (${accepted.map((t) => bareSymbol(t.symbol)).join(', ') || '?'} count; the widest plateaus at the top of the flame graph)`,
    equal: (x) => accepted.some((t) => bareSymbol(t.symbol) === x),
    mixUp: (x) => (IDLE_SYMBOL.test(x) ? 'that is the idle loop (a CPU with nothing to do); name the heaviest symbol that does work' : undefined),
  });
  const topAns = answerAt(answers, 'where.top_symbol');
  const topHit = typeof topAns === 'string' ? named(topAns) : undefined;
  c.value('where.top_share', {
    parse: asCount,
    expected: base ? (topHit ?? accepted[0])?.share ?? -1 : undefined,
    noFact: noBase,
    form: 'a percent of all samples (e.g. 4.2)',
    where: `the \`share\` of ${topHit ? bareSymbol(topHit.symbol) : 'the symbol you named'} in \`profile.top\` of the baseline record (within 0.2)`,
    equal: (x, e) => Math.abs(x - e) <= 0.2,
    show: (x) => x.toFixed(1),
  });
  c.text('where.leader_time', 'from the baseline flame graph and the leader\'s us/op: what the leader spends its time on per op (receiving requests and PrepareOKs, sending Prepares and replies, waking up, the veth deliveries that run on its CPU)', 12);

  // Q3: the prune at n = 3
  const n = f.replicas ?? 3;
  c.value('prune.dropped_per_op', {
    parse: asInt,
    expected: n - 2,
    form: 'a count',
    where: `with n = ${n} (f = ${(n - 1) / 2}) the leader gets n - 1 PrepareOKs per op and the f-th completes the quorum (lab 03, Q1)`,
  });
  c.text('prune.why_little', 'compare the UDP receive and context-switch shares of baseline and quorum: what did receiving the dropped PrepareOK cost, what does the prune cost, and which wakeup does the prune NOT remove (the project README, "Why the quorum prune alone is worth about nothing here")', 15);
  // Q4: the fast reply
  c.text('fast_reply.why_pays', 'which work per Prepare the fast reply removes from the followers (socket receive, wakeup and context switch, the PrepareOK send) and why that is large on this lab', 12);
  // Q5, Q6: virtio-net and native XDP
  c.value('virtio.driver_queues', {
    parse: asInt,
    expected: 4,
    form: 'a number of queues',
    where: 'the project README, "VM labs" (the Vagrantfile paragraph): native XDP on virtio_net needs spare TX rings, one per CPU on top of the active queues',
  });
  c.text('virtio.what_differs', 'where a native XDP program runs on virtio-net (the driver\'s receive buffer, before any skb) against a veth, and so what a dropped PrepareOK saves the leader there (bpf/README.md "Which ingress hook")', 15);
  c.text('virtio.experiment', 'an electrode-lab run that would show it: which lab, which arms and flags, and which figures you would compare', 10);
  return { lab: '07-one-pays', items: c.items };
}
