/**
 * Lab 04 (the course project's code, run as it was): the facts of the
 * scenario run (`upstream start --scenario`): what the scenario's own files
 * committed, which replicas crashed where, the ports the kernel and the
 * replicas used; the generated rerun; the shared-bpffs run. All read from
 * the run folders of lab 'lab04' (results.json and crash folders).
 */
import { asInt, asList, asReplica, asSignal, Answers } from './answers.js';
import { Checker, Verdict } from './check.js';
import { Evidence, RunEvidence } from './evidence.js';

export const LAB04_LAB = 'lab04';

export interface Lab04Facts {
  /** The newest run whose first record is a scenario as it was. */
  asIs?: { run: string; committed: number; crashed: string[]; signals: string[]; functions: string[]; replicaPorts?: string; generatedCommitted?: number; generatedPort?: number };
  /** The newest run in which a loader aborted on a pin (the shared bpffs). */
  shared?: { run: string; node: string; signal: string; pin?: string };
}

const portSpan = (ports: number[]) => {
  const s = [...new Set(ports)].sort((a, b) => a - b);
  return s.length > 1 && s.every((x, i) => i === 0 || x === s[i - 1]! + 1) ? `${s[0]}-${s.at(-1)}` : s.join(',');
};

function scenarioRuns(ev: Evidence): RunEvidence[] {
  return ev.runs.filter((r) => r.results.lab === LAB04_LAB && r.results.records[0]?.upstream?.variant.startsWith('scenario-'));
}

export function lab04Facts(ev: Evidence): Lab04Facts {
  const out: Lab04Facts = {};
  // the segfault is undefined behaviour: the newest run that caught one, else the newest
  const runs = scenarioRuns(ev);
  const run = runs.filter((r) => r.results.records[0]!.crashes.length > 0).at(-1) ?? runs.at(-1);
  if (run) {
    const [asIs, gen] = run.results.records;
    const crashes = run.crashes.filter((c) => c.info.process === 'upstream-replica' && asIs!.crashes.some((x) => x.dir === c.dir));
    const ports = asIs!.upstream?.ports ?? [];
    out.asIs = {
      run: run.id,
      committed: asIs!.completed,
      crashed: [...new Set(crashes.map((c) => c.info.node))].sort(),
      signals: [...new Set(crashes.map((c) => c.info.signal ?? ''))],
      functions: [...new Set(crashes.flatMap((c) => c.info.topFrames))],
      ...(ports.length ? { replicaPorts: portSpan(ports) } : {}),
      ...(gen && gen.status === 'ok' ? { generatedCommitted: gen.completed } : {}),
    };
  }
  for (const r of [...ev.runs].reverse()) {
    if (r.results.lab !== LAB04_LAB) continue;
    const c = r.crashes.find((x) => x.info.process === 'upstream-fast' && /Assertion `bpf_obj_pin/.test(x.logTail));
    if (c) {
      out.shared = { run: r.id, node: c.info.node, signal: c.info.signal ?? '', ...(/bpf_obj_pin\([^,]+,\s*"([^"]+)"\)/.exec(c.logTail) ? { pin: /bpf_obj_pin\([^,]+,\s*"([^"]+)"\)/.exec(c.logTail)![1]! } : {}) };
      break;
    }
  }
  return out;
}

/**
 * The scenario's compose file names its containers replica1..replica7 and
 * the lab's nodes count from 0, so the scenario's replicaK is the lab's
 * replica(K-1): an answer in the scenario's names is that mix-up, said so.
 */
function scenarioNames(answer: string[], expected: string[]): string | undefined {
  const shifted = expected.map((r) => `replica${Number(r.slice('replica'.length)) + 1}`).sort();
  if (JSON.stringify([...answer].sort()) !== JSON.stringify(shifted)) return undefined;
  const e = [...expected].sort().at(-1)!;
  return `the scenario's container names, which count from 1 (its replica${Number(e.slice('replica'.length)) + 1} is the lab's ${e}); answer with the lab's node names, as \`electrode-lab crashes\` lists them`;
}

/** `10001-10007`, `10001..10007`, a list: the same set of ports. */
function asPorts(v: unknown): string | undefined {
  const s = String(v ?? '').trim();
  const range = /^(\d+)\s*(?:-|\.\.|to)\s*(\d+)$/.exec(s);
  if (range) {
    const a = Number(range[1]);
    const b = Number(range[2]);
    return b >= a && b - a < 100 ? portSpan(Array.from({ length: b - a + 1 }, (_, i) => a + i)) : undefined;
  }
  const xs = asList(v).map(Number);
  return xs.length && xs.every((x) => Number.isInteger(x) && x > 0) ? portSpan(xs) : undefined;
}

export function checkLab04(answers: Answers, ev: Evidence): Verdict {
  const f = lab04Facts(ev);
  const c = new Checker(answers);
  const noRun = 'run the README\'s `electrode-lab upstream start --name lab04 ... --scenario ...` first (Part 1)';
  c.fact('scenario run', f.asIs !== undefined, `scenario run ${f.asIs?.run ?? ''} recorded`, noRun);
  const a = f.asIs;
  c.fact('a crash captured', Boolean(a && a.crashed.length), `replicas ${a?.crashed.join(', ')} crashed in run ${a?.run}`, a ? 'no replica crashed in the scenario runs recorded: the segfault is undefined behaviour and does not come every time; run Part 1 again' : noRun);
  c.value('as_is.committed', { parse: asInt, expected: a?.committed, noFact: noRun, form: 'a count', where: 'the "what happened" line of `upstream start`, or the first record of the run\'s results.json' });
  c.value('as_is.crashed', {
    parse: (v) => {
      const xs = asList(v).map(asReplica);
      return xs.length && xs.every(Boolean) ? [...new Set(xs as string[])].sort() : undefined;
    },
    expected: a ? a.crashed : undefined,
    noFact: noRun,
    form: 'a list of replicas',
    where: "`electrode-lab crashes <run>`: every replica with a crash folder of that run (the loaders too would have one), in the lab's node names (replica0 ..., not the scenario's replica1 ...)",
    show: (xs) => xs.join(', '),
    mixUp: scenarioNames,
  });
  c.value('as_is.signal', { parse: asSignal, expected: a?.signals[0], noFact: noRun, form: 'a signal (SIGSEGV, ...)', where: 'crash.json or the crashes list' });
  c.value('as_is.function', {
    parse: (v) => (typeof v === 'string' && v.trim() ? v.trim().replace(/\(\)$/, '') : undefined),
    expected: a?.functions.find((x) => /HandleDoViewChange/.test(x)) ? 'HandleDoViewChange' : a?.functions[0],
    noFact: noRun,
    form: "a function of upstream's VR code",
    where: "backtrace.txt of a crash folder: the first frame in vr/replica.cc (VRReplica::...), below protobuf's accessors",
    equal: (x, y) => x.split('::').at(-1) === y.split('::').at(-1),
  });
  c.value('as_is.source_line', {
    parse: (v) => (typeof v === 'string' && /replica\.cc:\d+/.test(v) ? v.trim() : undefined),
    expected: 'vr/replica.cc:1154-1161',
    form: 'file:line (vr/replica.cc:N or N-M)',
    where: 'the loop in VRReplica::HandleDoViewChange whose loop variable the code after it keeps a pointer into (explain.txt names it)',
    equal: (x) => {
      const m = /replica\.cc:(\d+)(?:-(\d+))?/.exec(x);
      if (!m) return false;
      const lo = Number(m[1]);
      const hi = Number(m[2] ?? m[1]);
      return lo <= 1161 && hi >= 1154;
    },
  });
  c.value('as_is.kernel_port', { parse: asInt, expected: 12345, form: 'a UDP port', where: "the two htons(...) checks of upstream's xdp-handler/fast_kern.c (the run's patch.scenario-*.diff does not change them)" });
  c.value('as_is.replica_ports', { parse: asPorts, expected: a ? (a.replicaPorts ?? '10001-10007') : undefined, noFact: noRun, form: 'ports, e.g. 20001-20007', where: "the scenario's config.txt (or \"Listening on UDP port\" in a log.tail)" });
  c.value('as_is.followers_per_prepare', { parse: asInt, expected: 1, form: 'a count', where: 'lib/transportcommon.h: what a replica built with TC_BROADCAST does with a message that has the broadcast bit' });
  c.value('as_is.prepareoks_needed', { parse: asInt, expected: 3, form: 'a count', where: 'n = 7 = 2f + 1: how many PrepareOKs besides its own does the leader wait for?' });
  c.text('as_is.why_three_worked', 'with n = 3, how many PrepareOKs does the leader need, and how many followers still got each Prepare?');

  c.value('generated.committed', { parse: asInt, expected: a?.generatedCommitted, noFact: a ? 'the generated rerun of that `upstream start` did not commit; read its output' : noRun, form: 'a count', where: 'the "upstream broadcast: ok: N requests committed" line' });
  c.value('generated.port', { parse: asInt, expected: ev.plan?.network.basePort ?? 51000, form: 'a UDP port', where: 'the run folder\'s scenario-to-generated.diff (config.txt and fast_kern.c)' });

  const noShared = 'run Part 3 of the README (`upstream start ... --arm all --shared-bpffs`)';
  c.fact('shared-bpffs run', f.shared !== undefined, `shared-bpffs run ${f.shared?.run ?? ''} recorded`, noShared);
  c.value('shared_bpffs.aborted_node', {
    parse: asReplica,
    expected: f.shared?.node,
    noFact: noShared,
    form: 'a replica',
    where: "the crash folder of that run whose process is upstream-fast (the lab's node name: replica0 ...)",
    mixUp: (a, e) => scenarioNames([a], [e]),
  });
  c.value('shared_bpffs.signal', { parse: asSignal, expected: f.shared?.signal, noFact: noShared, form: 'a signal', where: 'its crash.json' });
  c.value('shared_bpffs.pin', {
    parse: (v) => (typeof v === 'string' && v.trim() ? v.trim() : undefined),
    expected: f.shared?.pin,
    noFact: noShared,
    form: 'a path under /sys/fs/bpf',
    where: "the failed assert in its log.tail: the pin it could not create",
    equal: (x, y) => x === y || x.split('/').at(-1) === y.split('/').at(-1),
  });
  c.text('shared_bpffs.why', 'who had pinned it already, and why could they in the course project\'s docker-compose.yaml?');
  c.text('report.causes', 'the chain from the scenario\'s files to the segfaults, one cause per line, and what electrode-lab generates instead', 15);
  return { lab: '04-upstream', items: c.items };
}
