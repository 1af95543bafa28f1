/**
 * Lab 02 (why 5 and 7 replicas crashed): the MAC rule of the plan, the
 * leader's clone counters (every `stats` reading is recorded), and the
 * crash folder of the bench's `all` trial (signal, frames, node, el_ctrl).
 */
import { nodeMac } from '../core/plan.js';
import { MAX_REPLICAS } from '../core/spec.js';
import { asChoice, asInt, asList, asReplica, asSignal, Answers, answerAt } from './answers.js';
import { Checker, Verdict } from './check.js';
import { CrashEvidence, Evidence, newestRunOf, readingsOf } from './evidence.js';
import { eventsOf, lastNormalView, runSegments } from './logs.js';

export const LAB02_CRASH_LAB = 'lab02-crash';

export interface Lab02Facts {
  n: number;
  lab: string;
  /** The crash of the bench's `all` trial (the arm with eBPF state), when the bench ran. */
  crash?: CrashEvidence & { step?: 'prepare' | 'commit'; via?: 'socket' | 'ring'; kernelView?: number; logView: number; faultAddress?: string };
  /** Crashes of the run, all arms (the folder question names the right one). */
  crashDirs: string[];
}

/** The message being handled, from the frames below commit_to: a ring record (vr_kernel_record) is a Prepare the fast reply acknowledged. */
function protocolStep(frames: readonly string[]): { step?: 'prepare' | 'commit'; via?: 'socket' | 'ring' } {
  for (const f of frames) {
    if (f === 'on_prepare') return { step: 'prepare', via: 'socket' };
    if (f === 'on_commit') return { step: 'commit', via: 'socket' };
    if (f === 'vr_kernel_record') return { step: 'prepare', via: 'ring' };
  }
  return {};
}

export function lab02Facts(ev: Evidence): Lab02Facts {
  const n = ev.plan?.cluster.n ?? 7;
  const lab = ev.plan?.lab ?? 'lab02';
  const run = newestRunOf(ev, LAB02_CRASH_LAB);
  const allDirs = new Set((run?.results.records ?? []).filter((r) => r.arm === 'all').flatMap((r) => r.crashes.map((c) => c.dir)));
  const c = run?.crashes.find((x) => allDirs.has(x.dir) && x.info.process === 'replica');
  let crash: Lab02Facts['crash'];
  if (c) {
    const ctrl = (c.bpf as { ctrl?: { view?: number } }).ctrl;
    crash = {
      ...c,
      ...protocolStep(c.info.topFrames),
      ...(typeof ctrl?.view === 'number' ? { kernelView: ctrl.view } : {}),
      logView: lastNormalView(runSegments(c.logTail).at(-1)),
      ...(/segfault at (\w+)/.exec(c.dmesg) ? { faultAddress: /segfault at (\w+)/.exec(c.dmesg)![1]! } : {}),
    };
  }
  return { n, lab, crash, crashDirs: (run?.crashes ?? []).map((x) => x.dir) };
}

/** `0`, `0x0`, `(nil)` -> 0n; other hex with or without 0x. */
function asAddress(v: unknown): bigint | undefined {
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  if (typeof v !== 'string') return undefined;
  const s = v.trim().toLowerCase();
  if (s === '(nil)' || s === 'nil' || s === 'null') return 0n;
  if (/^(0x)?[0-9a-f]+$/.test(s)) return BigInt(s.startsWith('0x') ? s : `0x${s}`);
  return undefined;
}

export function checkLab02(answers: Answers, ev: Evidence): Verdict {
  const f = lab02Facts(ev);
  const c = new Checker(answers);
  const mac6 = ev.plan ? (ev.plan.nodes.find((x) => x.name === 'replica6')?.mac ?? nodeMac(f.lab, 'replica', 6)) : nodeMac('lab02', 'replica', 6);

  c.value('one_plan.replica6_mac', {
    parse: (v) => (typeof v === 'string' && /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(v.trim()) ? v.trim().toLowerCase() : undefined),
    expected: mac6,
    form: 'a MAC address (aa:bb:cc:dd:ee:ff)',
    where: 'the `peer 6` line of the peers.table that `electrode-lab render 7 --name lab02` prints',
  });
  c.text('one_plan.mac_rule', 'compare `render 7 --name lab02` with `render 7 --name other`: which bytes depend on the lab name, which on the role and the index?');
  c.value('one_plan.eight_replicas_code', {
    parse: (v) => (typeof v === 'string' && v.trim() ? v.trim().toUpperCase() : undefined),
    expected: 'SPEC_EVEN_REPLICAS',
    form: 'a diagnostic code',
    where: 'the first word of the line `electrode-lab render 8 --name lab02` prints',
  });
  c.text('one_plan.nine_replicas', 'what would you edit to run 9 replicas (try `render 9`)? Compare with the Docker attempt\'s CLUSTER_SIZE and MAC table');
  c.value('one_plan.sizes_from', {
    parse: asChoice,
    expected: 'peers.table',
    form: 'a file name',
    where: 'the project README, "eBPF fast paths": the file el-loader reads to fill the maps',
    equal: (a) => /peers?\.table|peers table|peer table/.test(a),
  });
  c.value('one_plan.max_replicas', { parse: asInt, expected: MAX_REPLICAS, form: 'a count', where: 'EL_MAX_REPLICAS in native/include/el_proto.h (and the spec limit in the project README)' });
  c.text('one_plan.explain', 'the eBPF verifier needs every loop bounded at load time; the replica sizes its arrays from the config at run time');

  // Q3: the leader's broadcast row of a recorded `stats` reading
  const leader = readingsOf(ev, 'replica0');
  const cloned = asInt(answerAt(answers, 'clones.cloned'));
  const passed = asInt(answerAt(answers, 'clones.passed'));
  const match = leader.find((r) => r.stats.broadcast.cloned === cloned && r.stats.broadcast.passed === passed);
  const last = leader.at(-1)?.stats.broadcast;
  const noReading = 'run `electrode-lab stats --name lab02` after the client run: each reading is recorded for the check';
  const readingWhere = last
    ? `no recorded reading of replica0 has broadcast passed ${passed ?? '?'} and cloned ${cloned ?? '?'} together (the last one: passed ${last.passed}, cloned ${last.cloned}); copy both from one \`stats --name lab02\``
    : noReading;
  // readings exist but none has both values: whatever was written is wrong, and `where` says why (-1 is never a count)
  c.value('clones.passed', { parse: asInt, expected: match ? passed : leader.length ? -1 : undefined, noFact: noReading, form: 'a count', where: readingWhere });
  c.value('clones.cloned', { parse: asInt, expected: match ? cloned : leader.length ? -1 : undefined, noFact: noReading, form: 'a count', where: readingWhere });
  c.value('clones.per_frame', { parse: asInt, expected: f.n - 2, form: 'a count', where: `user space sends ONE copy to the first follower; TC clones it for every other replica except the leader (n = ${f.n})` });
  // the leader's exit line says how many ops its log held when `stop` ended the run the reading was taken in
  const ops = match ? leaderOpsAt(ev, match.at) : undefined;
  c.value('clones.operations', {
    parse: asInt,
    expected: ops,
    noFact: match ? 'stop the replicas (`electrode-lab stop --name lab02`): the leader logs its last op when it exits' : 'first copy a recorded reading into clones.passed and clones.cloned',
    form: 'a count',
    where: 'the client\'s "Completed N requests" line (every request is one op)',
  });
  c.value('clones.commits', {
    parse: asInt,
    expected: match && ops !== undefined ? match.stats.broadcast.passed - ops : undefined,
    noFact: 'answer clones.passed, clones.cloned and clones.operations first',
    form: 'a count',
    where: 'PASSED counts every frame fanned out: one Prepare per op, and Commits (heartbeats)',
  });

  // Q4-Q7: the crash folder of the `all` trial
  const cr = f.crash;
  const noCrash = `no crash of the bench's \`all\` trial is recorded: run the bench of the README (\`--name ${LAB02_CRASH_LAB}\`, from the project folder so its run lands in ./runs)`;
  const dirName = (d: string) => d.split('/').at(-1)!;
  c.value('crash.folder', {
    parse: (v) => (typeof v === 'string' && v.trim() ? dirName(v.trim().replace(/\/+$/, '')) : undefined),
    expected: cr ? dirName(cr.dir) : undefined,
    noFact: noCrash,
    form: 'a folder name (replicaN-PID)',
    where: `\`electrode-lab crashes\` lists ${f.crashDirs.length || 'the'} crash folders; only the \`all\` trial attached eBPF, so only its bpf.json has el_ctrl`,
  });
  c.value('crash.node', { parse: asReplica, expected: cr?.info.node, noFact: noCrash, form: 'a replica (replica3)', where: 'crash.json, or the folder name' });
  c.value('crash.signal', { parse: asSignal, expected: cr?.info.signal ?? undefined, noFact: noCrash, form: 'a signal name (SIGxxx)', where: '"Program terminated with signal" in backtrace.txt' });
  c.value('crash.top_frames', {
    parse: (v) => (asList(v).length ? asList(v) : undefined),
    expected: cr?.info.topFrames.slice(0, 4),
    noFact: noCrash,
    form: 'a list of function names',
    where: 'the first four frames (#0 to #3) of the crashing thread in backtrace.txt, innermost first',
    equal: (a, b) => a.length >= b.length && b.every((x, i) => a[i] === x),
  });
  c.value('crash.protocol_step', {
    parse: (v) => {
      const s = asChoice(v);
      return s?.includes('prepare') ? 'prepare' : s?.includes('commit') ? 'commit' : undefined;
    },
    expected: cr?.step,
    noFact: cr ? 'this crash did not happen while a Prepare or a Commit was handled: see its frames' : noCrash,
    form: 'Prepare or Commit',
    where: 'the frames below commit_to in backtrace.txt name the message being handled (a record of the fast reply\'s ring buffer is a Prepare)',
  });
  c.value('crash.delivered_by', {
    parse: (v) => {
      const s = asChoice(v);
      return s?.includes('ring') || s?.includes('kernel') || s?.includes('xdp') ? 'ring' : s?.includes('socket') || s?.includes('udp') ? 'socket' : undefined;
    },
    expected: cr?.via,
    noFact: cr ? 'this crash did not happen while a Prepare or a Commit was handled: see its frames' : noCrash,
    form: 'socket or ring (buffer)',
    where: 'below the on_*/vr_kernel_record frame: drain_socket (the UDP socket) or el_fp_consume/ring_buffer (the fast reply\'s ring buffer)',
  });
  c.value('crash.kernel_view', { parse: asInt, expected: cr?.kernelView, noFact: noCrash, form: 'a view number', where: 'ctrl.view in bpf.json' });
  c.value('crash.log_view', { parse: asInt, expected: cr?.logView, noFact: noCrash, form: 'a view number', where: 'the last "view N normal" line of log.tail (none: every replica starts in view 0)' });
  c.text('crash.why_el_ctrl', 'what would the fast reply do after a view change if el_ctrl still said the old view (the Docker attempt wrote it once)?');
  if (cr && cr.faultAddress === undefined) {
    c.fact('kernel segfault line', true, 'dmesg.txt has no segfault line on this machine (the kernel may not print them here): crash.fault_address is not checked', '');
  } else {
    c.value('crash.fault_address', {
      parse: asAddress,
      expected: cr?.faultAddress !== undefined ? asAddress(cr.faultAddress) : undefined,
      noFact: noCrash,
      form: 'an address (0x...)',
      where: 'the value after "segfault at" in dmesg.txt (what the kernel logged; log.tail is the replica\'s own log)',
      show: (x) => `0x${x.toString(16)}`,
    });
  }
  c.text('crash.find_instruction', 'the `ip` of the segfault line minus the load address of the replica binary (the "in replica[...+...]" part), then `addr2line -f -e native/build/replica <offset>`');
  c.value('assertions.never_add', {
    parse: (v) => asChoice(v)?.replace(/^-d/, ''),
    expected: 'ndebug',
    form: 'a compiler flag',
    where: 'the comment at the top of native/Makefile (the C counterpart of the course project\'s -DNASSERT)',
  });
  c.text('assertions.explain', 'with assertions off, a failed check no longer stops the replica at the bug: what happens instead with a dangling pointer?');
  return { lab: '02-five-and-seven', items: c.items };
}

/** The leader's last op when it exited, for the run a reading at `at` was taken in. */
function leaderOpsAt(ev: Evidence, at: string): number | undefined {
  const t = Date.parse(at) / 1000;
  for (const seg of runSegments(ev.logs.replica0 ?? '')) {
    if (!seg.start || seg.start.t > t) continue;
    const exit = eventsOf(seg, 'exit').at(-1);
    if (!exit || exit.t < t) continue;
    const m = /last op (\d+)/.exec(exit.text);
    return m ? Number(m[1]) : undefined;
  }
  return undefined;
}
