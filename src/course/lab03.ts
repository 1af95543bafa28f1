/**
 * Lab 03 (the three fast paths, measured): the leader's quorum counters and
 * a dead follower's reply counters from recorded `stats` readings, the
 * view changes of the broken-broadcast run from the logs, and the speedups
 * of the student's own bench run.
 */
import { summarize } from '../bench/stats.js';
import { ArmName } from '../bench/types.js';
import { NodeBpfStats } from '../lab/bpf.js';
import { asChoice, asInt, asList, asNumber, asReplica, Answers, answerAt } from './answers.js';
import { Checker, Verdict } from './check.js';
import { Evidence, newestRunOf, readingsOf } from './evidence.js';
import { RunSegment, eventsOf, exitedCleanly, parseHow, runSegments } from './logs.js';

export const LAB03_BENCH_LAB = 'lab03-bench';
/** The follower the README kills. */
export const LAB03_DEAD = 'replica2';

/** `start`'s boundary line says which fast paths a run used. */
const isAll = (how: string) => parseHow(how).fastPaths === 'broadcast,quorum,reply';
const isBroadcastOnly = (how: string) => parseHow(how).fastPaths === 'broadcast';

export interface Lab03Facts {
  n: number;
  genericRun: boolean;
  /** When the dead follower stopped logging in a `start --all` run it did not exit from (killed). */
  deadAfter?: number;
  /** The last broadcast-only run that saw view changes. */
  disagree?: { noticedBy: string[]; finalView: number; finalLeader: string };
  refusal?: string;
  /** Speedup of each arm over baseline per `<replicas>/<threads>`, and the best arm there. */
  speedups: Record<string, Partial<Record<ArmName, number>>>;
  best: Record<string, ArmName>;
}

function runsOf(ev: Evidence, test: (how: string) => boolean): Record<string, RunSegment[]> {
  return Object.fromEntries(Object.entries(ev.logs).map(([node, text]) => [node, runSegments(text).filter((s) => s.start && test(s.start.how))]));
}

export function lab03Facts(ev: Evidence): Lab03Facts {
  const n = ev.plan?.cluster.n ?? 5;
  const genericRun = Object.values(ev.logs).some((t) => runSegments(t).some((s) => s.start !== undefined && parseHow(s.start.how).xdp === 'generic'));
  const deadRuns = (runsOf(ev, isAll)[LAB03_DEAD] ?? []).filter((s) => s.events.length && !exitedCleanly(s) && !eventsOf(s, 'stopping').length);
  const lastT = (s: RunSegment) => Math.max(...s.events.map((e) => e.t));
  const deadAfter = deadRuns.length ? lastT(deadRuns.at(-1)!) : undefined;

  // the broken broadcast: the last broadcast-only run in which a follower noticed the leader's silence
  let disagree: Lab03Facts['disagree'];
  const bc = runsOf(ev, isBroadcastOnly);
  const count = Math.max(0, ...Object.values(bc).map((s) => s.length));
  for (let i = count - 1; i >= 0 && !disagree; i--) {
    const segs = Object.entries(bc).map(([node, s]) => [node, s[i]] as const);
    const noticedBy = segs.filter(([, s]) => eventsOf(s, 'no-word').some((e) => e.leader === 0)).map(([node]) => node).sort();
    if (!noticedBy.length) continue;
    const finalView = Math.max(0, ...segs.flatMap(([, s]) => eventsOf(s, 'normal').map((e) => e.view)));
    disagree = { noticedBy, finalView, finalLeader: `replica${finalView % n}` };
  }
  const refusal = runSegments(ev.logs.replica0 ?? '').flatMap((s) => eventsOf(s, 'refused')).find((e) => e.option === '--fast-broadcast')?.text;

  const speedups: Lab03Facts['speedups'] = {};
  const best: Lab03Facts['best'] = {};
  const run = newestRunOf(ev, LAB03_BENCH_LAB);
  if (run) {
    const rows = summarize(run.results);
    for (const r of rows) {
      if (r.nemesis !== 'none') continue;
      const k = `${r.replicas}/${r.threads}`;
      if (r.arm !== 'baseline' && Number.isFinite(r.speedup)) (speedups[k] ??= {})[r.arm] = r.speedup;
      const cur = best[k];
      const curRow = rows.find((x) => x.replicas === r.replicas && x.threads === r.threads && x.arm === cur && x.nemesis === 'none');
      if (Number.isFinite(r.throughput.median) && (!curRow || r.throughput.median > curRow.throughput.median)) best[k] = r.arm;
    }
  }
  return { n, genericRun, ...(deadAfter !== undefined ? { deadAfter } : {}), ...(disagree ? { disagree } : {}), ...(refusal ? { refusal } : {}), speedups, best };
}

/** The recorded reading of `node` that has these values, if any. */
function readingWith(ev: Evidence, node: string, pick: (s: NodeBpfStats) => number[], want: (number | undefined)[], after?: number) {
  return readingsOf(ev, node).find((r) => (after === undefined || Date.parse(r.at) / 1000 > after) && pick(r.stats).every((x, i) => x === want[i]));
}

const ARMS_NOT_BASE: ArmName[] = ['broadcast', 'quorum', 'reply', 'all'];

export function checkLab03(answers: Answers, ev: Evidence): Verdict {
  const f = lab03Facts(ev);
  const c = new Checker(answers);
  const noReading = 'run `electrode-lab stats --name lab03` right after the client: each reading is recorded for the check';

  // Q1: the leader's quorum row
  const q = ['seen', 'passed', 'dropped'] as const;
  const qAns = q.map((k) => asInt(answerAt(answers, `counters.quorum_${k}`)));
  const qHit = readingWith(ev, 'replica0', (s) => q.map((k) => s.quorum[k]), qAns);
  const qLast = readingsOf(ev, 'replica0').at(-1)?.stats.quorum;
  // readings exist but none has all three: whatever was written is wrong, and `where` says why (-1 is never a count)
  for (const [i, k] of q.entries()) {
    c.value(`counters.quorum_${k}`, {
      parse: asInt,
      expected: qHit ? qAns[i] : qLast ? -1 : undefined,
      noFact: noReading,
      form: 'a count',
      where: qLast
        ? `copy SEEN, PASSED and DROPPED of replica0's quorum row from ONE \`stats --name lab03\` (no recorded reading has ${qAns.join('/')}; the last: ${qLast.seen}/${qLast.passed}/${qLast.dropped})`
        : noReading,
    });
  }
  c.value('counters.expected_seen_per_op', { parse: asInt, expected: f.n - 1, form: 'a count', where: `every follower acknowledges every Prepare (n = ${f.n})` });
  c.value('counters.expected_passed_per_op', { parse: asInt, expected: 1, form: 'a count', where: 'only the PrepareOK that completes the quorum goes up' });
  c.value('counters.expected_dropped_per_op', { parse: asInt, expected: f.n - 2, form: 'a count', where: `the acks before the quorum and after it (f = ${(f.n - 1) / 2})` });
  c.text('counters.passed_also', 'PASSED is larger than the number of ops: what else does el_xdp_quorum pass up? (bpf/el_quorum.bpf.c, the EL_F_REPORT branch)');
  // Q2, Q3
  c.text('reply.refuses', 'native/include/el_fastpath_rules.h, el_fr_decide: each EL_FR_* verdict other than EL_FR_ACK');
  c.text('reply.out_of_order', 'a PrepareOK is cumulative (native/PROTOCOL.md, message table): what would it claim about the ops before a gap?');
  c.fact('generic XDP run', f.genericRun, 'a run with --xdp-mode generic is recorded', 'no run with generic XDP is recorded: `electrode-lab start --name lab03 --all --xdp-mode generic` (README, Q3)');
  c.text('xdp.generic_vs_native', 'compare the two client summaries; where in the kernel does generic XDP run (after the skb is built)?');

  // Q4: a dead follower's kernel stops acknowledging
  const noDead = `kill ${LAB03_DEAD} in a \`start --name lab03 --all\` run, run the client, then \`stats --name lab03\` (README, "A follower dies")`;
  const lAns = [asInt(answerAt(answers, 'lease.replied')), asInt(answerAt(answers, 'lease.fallback'))];
  const lHit = f.deadAfter !== undefined ? readingWith(ev, LAB03_DEAD, (s) => [s.reply.replied, s.reply.fallback], lAns, f.deadAfter) : undefined;
  const lAny = f.deadAfter !== undefined ? readingsOf(ev, LAB03_DEAD).filter((r) => Date.parse(r.at) / 1000 > f.deadAfter!).at(-1) : undefined;
  for (const [i, k] of (['replied', 'fallback'] as const).entries()) {
    c.value(`lease.${k}`, {
      parse: asInt,
      expected: lHit ? lAns[i] : lAny ? -1 : undefined,
      noFact: f.deadAfter === undefined ? noDead : `no \`stats\` reading after ${LAB03_DEAD} died is recorded: ${noReading}`,
      form: 'a count',
      where: lAny
        ? `copy REPLIED and FALLBACK of ${LAB03_DEAD}'s reply row from one \`stats\` after the kill (the last: ${lAny.stats.reply.replied}/${lAny.stats.reply.fallback})`
        : noDead,
    });
  }
  c.value('lease.stops_acking', {
    parse: (v) => asChoice(v)?.replace(/^el_fr_/, ''),
    expected: 'lease',
    form: 'an EL_FR_* verdict',
    where: 'native/include/el_fastpath_rules.h, el_fr_decide: which verdict stops the fast reply when the replica stops renewing el_ctrl?',
  });
  c.value('lease.ms', { parse: asInt, expected: 50, form: 'milliseconds', where: 'native/PROTOCOL.md, "eBPF hooks" (LEASE_NS in native/src/replica.h)' });
  c.text('lease.who_renews', 'which process renews el_ctrl.lease_ns, and how often (native/PROTOCOL.md, "eBPF hooks")?');

  // Q5-Q7: user space and the kernel disagree
  c.text('disagree.compare', 'throughput, median and p99 latency, timeouts of the two client runs');
  const noDis = 'the README\'s broken-broadcast run is not recorded: `start --name lab03 --broadcast`, a client run, `exec --name lab03 replica0 -- tc qdisc del dev eth0 clsact`, a second client run, then wait a second before you read the logs';
  c.value('disagree.noticed_by', {
    parse: (v) => {
      const xs = asList(v).map(asReplica);
      return xs.length && xs.every(Boolean) ? (xs as string[]).sort() : undefined;
    },
    expected: f.disagree?.noticedBy,
    noFact: noDis,
    form: 'a list of replicas',
    where: 'every replica whose log of that run says "no word from leader 0"',
  });
  c.value('disagree.final_view', { parse: asInt, expected: f.disagree?.finalView, noFact: noDis, form: 'a view number', where: 'the highest "view N normal" in the logs of that run' });
  c.value('disagree.final_leader', { parse: asReplica, expected: f.disagree?.finalLeader, noFact: noDis, form: 'a replica', where: 'the leader of that view (view % n)' });
  c.text('disagree.why_crawl', 'while the client runs, which followers still get each Prepare, and from what (native/PROTOCOL.md, "Retransmission")?');
  c.text('disagree.why_cured', 'whose TC egress hook fans out the Prepares in the new view?');
  c.value('disagree.refusal_fix', {
    parse: (v) => (typeof v === 'string' && v.trim() ? v.trim() : undefined),
    expected: f.refusal ? 'electrode-lab attach --broadcast' : undefined,
    noFact: 'run `electrode-lab start --name lab03 --quorum --replica-args \'0:--fast-broadcast\'` (README, Q7): replica0 refuses and says why',
    form: 'a command',
    where: 'the command replica0\'s refusal in its log names',
    equal: (a) => /attach\b.*--broadcast/.test(a),
  });
  c.text('disagree.detect', 'a replica could watch a counter or its followers\' acks at run time: which, and what would it do?');

  // Q8: the student's own benchmark
  const noBench = `no bench run of lab '${LAB03_BENCH_LAB}' is recorded: run the README's bench from the project folder (its run lands in ./runs)`;
  for (const r of [3, 5]) {
    for (const t of [1, 8]) {
      const k = `${r}/${t}`;
      c.value(`bench.all_speedup.r${r}_t${t}`, {
        parse: asNumber,
        expected: f.speedups[k]?.all,
        noFact: Object.keys(f.speedups).length ? `your bench has no ${r}-replica, ${t}-thread rows` : noBench,
        form: 'a ratio (e.g. 1.23)',
        where: `the "vs baseline" column of \`electrode-lab report\` for ${r} replicas, arm all, ${t} thread(s)`,
        equal: (a, b) => Math.abs(a - b) <= 0.011,
        show: (x) => x.toFixed(2),
      });
    }
  }
  for (const t of [1, 8]) {
    c.value(`bench.best_arm_5r_t${t}`, {
      parse: (v) => {
        const s = asChoice(v);
        return s && (['baseline', ...ARMS_NOT_BASE] as string[]).includes(s) ? (s as ArmName) : undefined;
      },
      expected: f.best[`5/${t}`],
      noFact: noBench,
      form: 'an arm (baseline, broadcast, quorum, reply, all)',
      where: `the arm with the highest median ops/s at 5 replicas, ${t} thread(s), in \`electrode-lab report\``,
    });
  }
  c.text('bench.beyond_noise', 'which differences are larger than the min-max ranges and the CV of the rows?');
  c.text('bench.paper', 'two reasons the gains differ from the paper here, and one electrode-lab experiment that would test one of them', 10);
  c.text('verifier.refused', 'the last lines of `electrode-lab check-kernel` after the bpf/el_common.h edit');
  c.text('verifier.why', 'what the 6.1 verifier knows about a value after a byte swap, and why clang drops a C `& 0xffff`');
  return { lab: '03-fast-paths', items: c.items };
}
