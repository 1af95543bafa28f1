/**
 * Lab 06 (a replica comes back): the facts are in the replica logs and in
 * the files the README's commands write in the project folder. Part 1, a
 * normal start: replica1's life after its `restart` line (recovering, whom
 * it asked, the snapshot it installed, the view it turned normal in). Part
 * 2, a start with --unsafe-no-recovery: the view the restarted replica then
 * led and whose log won, and the acknowledged writes lost, judged the way
 * `check-history` judges them (src/bench/safety.ts) from the client's
 * history and ack log and the committed logs of the replicas that ended
 * with a clean stop (a SIGKILL leaves no exit line).
 */
import { analyzeTrial, DumpInput, SafetyRecord } from '../bench/safety.js';
import { asInt, asReplica, Answers } from './answers.js';
import { Checker, Verdict } from './check.js';
import { Evidence } from './evidence.js';
import { eventsOf, exitedCleanly, parseHow, runSegments, RunSegment } from './logs.js';

/** The files the README's commands write in the project folder (`lab check` copies them, `lab reset` removes them). */
export const LAB06_FILES = { prefix: 'lab06-', history: 'lab06-history.jsonl', acks: 'lab06-acks.txt', committed: 'lab06-committed' } as const;

/** The committed log of one life: `start --dump-log lab06-committed` and its restarts (src/core/argv.ts incarnationDumpLog). */
export const lab06Dump = (node: string, incarnation: number) => `${LAB06_FILES.committed}.${node}.log${incarnation ? `.${incarnation}` : ''}`;

const RESTART = /electrode-lab restart: (\S+) \(incarnation (\d+)\)$/;

/** One process's life inside a start's run: the first (incarnation 0), then one per `restart` line. */
interface Life {
  incarnation: number;
  seg: RunSegment;
}

function livesOf(run: RunSegment): Life[] {
  const out: { incarnation: number; lines: string[] }[] = [{ incarnation: 0, lines: [] }];
  for (const line of run.lines) {
    const m = RESTART.exec(line);
    if (m) out.push({ incarnation: Number(m[2]), lines: [] });
    else out.at(-1)!.lines.push(line);
  }
  return out.map((l) => ({ incarnation: l.incarnation, seg: runSegments(l.lines.join('\n'))[0] ?? { events: [], lines: [] } }));
}

export interface Lab06Facts {
  /** The newest normal start in which replica1 was restarted, and what that life logged. */
  recovered?: { asked?: number; fetchedFrom?: number; snapshotOp?: number; snapshotFrom?: number; view?: number; recoveredFrom?: number };
  /** The newest --unsafe-no-recovery start in which replica1 was restarted. */
  unsafe?: {
    /** The view the restarted replica1 entered as leader, its last op then, and whose log won. */
    elected?: { view: number; lastOp: number };
    winner?: number;
    /** The durability verdict, when the history, the ack log and the survivors' committed logs are there. */
    safety?: SafetyRecord;
    /** What is missing for the verdict (a file, a clean stop). */
    missing: string[];
  };
}

const NODE = 'replica1';

export function lab06Facts(ev: Evidence): Lab06Facts {
  const out: Lab06Facts = {};
  const runs = runSegments(ev.logs[NODE] ?? '');
  const restarted = (r: RunSegment) => livesOf(r).length > 1;
  const safeRun = runs.filter((r) => r.start && !parseHow(r.start.how).noRecovery && restarted(r)).at(-1);
  if (safeRun) {
    const life = livesOf(safeRun).at(-1)!;
    const asked = /recovering: .*; asking the other (\d+) replicas/.exec(life.seg.lines.join('\n'));
    const fetch = eventsOf(life.seg, 'recovery-fetch')[0];
    const snap = eventsOf(life.seg, 'snapshot-installed')[0];
    const normal = eventsOf(life.seg, 'normal').find((e) => e.recoveredFrom !== undefined);
    out.recovered = {
      ...(asked ? { asked: Number(asked[1]) } : {}),
      ...(fetch ? { fetchedFrom: fetch.from } : {}),
      ...(snap ? { snapshotOp: snap.op, snapshotFrom: snap.from } : {}),
      ...(normal ? { view: normal.view, recoveredFrom: normal.recoveredFrom! } : {}),
    };
  }
  const unsafeRun = runs.filter((r) => r.start && parseHow(r.start.how).noRecovery && restarted(r)).at(-1);
  if (unsafeRun) {
    const life = livesOf(unsafeRun).at(-1)!;
    const elected = eventsOf(life.seg, 'normal').find((e) => e.how === 'elected' && e.me);
    const wins = life.seg.lines.map((l) => /view \d+: the log of replica (\d+) wins/.exec(l)).filter(Boolean).at(-1);
    const missing: string[] = [];
    const file = (name: string) => {
      const t = ev.files?.[name];
      if (t === undefined) missing.push(name);
      return t;
    };
    const history = file(LAB06_FILES.history);
    const acks = file(LAB06_FILES.acks);
    // the lives of this start, per replica: its newest life is the lab's state when it stopped cleanly
    const dumps: DumpInput[] = [];
    for (const [node, text] of Object.entries(ev.logs)) {
      const run = runSegments(text).filter((r) => r.start && r.start.iso === unsafeRun.start!.iso)[0];
      if (!run) continue;
      const lives = livesOf(run);
      for (const l of lives) {
        const name = lab06Dump(node, l.incarnation);
        const survivor = l === lives.at(-1) && exitedCleanly(l.seg);
        const t = ev.files?.[name];
        if (t === undefined) {
          if (survivor) missing.push(name);
          continue;
        }
        dumps.push({ node, incarnation: l.incarnation, survivor, text: t });
      }
    }
    const stopped = dumps.filter((d) => d.survivor).length;
    if (!stopped && !missing.some((m) => m.startsWith(LAB06_FILES.committed))) missing.push('a clean stop (`electrode-lab stop --name lab06`: the replicas write their committed logs out when they stop)');
    out.unsafe = {
      ...(elected ? { elected: { view: elected.view, lastOp: elected.lastOp } } : {}),
      ...(wins ? { winner: Number(wins[1]) } : {}),
      ...(history !== undefined && acks !== undefined && stopped && !missing.length ? { safety: analyzeTrial({ history, acks, dumps }) } : {}),
      missing,
    };
  }
  return out;
}

/** `135756554371073 1` (client, request) as check-history prints it, with or without its `(acknowledged at op ...)` tail. */
function asRequestId(v: unknown): string | undefined {
  const m = /^\s*(\d+)[\s:]+(\d+)(?:\s|\(|$)/.exec(String(v ?? ''));
  return m ? `${m[1]} ${m[2]}` : undefined;
}

export function checkLab06(answers: Answers, ev: Evidence): Verdict {
  const f = lab06Facts(ev);
  const c = new Checker(answers);
  const logs = 'replica1\'s log after its `electrode-lab restart: replica1` line (<lab home>/labs/lab06/logs/replica1/replica.log)';
  const part1 = 'run Part 1: `electrode-lab start --name lab06`, kill replica1, `electrode-lab restart --name lab06 replica1`';
  c.fact('a replica recovered', f.recovered?.view !== undefined, `replica1 recovered from replica ${f.recovered?.recoveredFrom ?? '?'} in view ${f.recovered?.view ?? '?'}`, f.recovered ? 'replica1 was restarted but its log does not say it recovered: run `electrode-lab status --name lab06` and read its log' : part1);
  const r = f.recovered;
  c.value('recovery.asked', { parse: asInt, expected: r?.asked, noFact: part1, form: 'a count of replicas', where: `the first \`recovering:\` line of ${logs}` });
  c.value('recovery.fetched_from', { parse: asReplica, expected: r?.fetchedFrom === undefined ? undefined : `replica${r.fetchedFrom}`, noFact: part1, form: 'a replica (replica0)', where: `the \`recovering: ... fetching its state\` line of ${logs}: whose state it installs` });
  c.value('recovery.snapshot_op', { parse: asInt, expected: r?.snapshotOp, noFact: part1, form: 'an op number', where: `the \`snapshot: installed op S ...\` line of ${logs}` });
  c.value('recovery.view', { parse: asInt, expected: r?.view, noFact: part1, form: 'a view number', where: `the \`view V normal (recovered from replica J)\` line of ${logs}` });
  c.text('recovery.why_wait', 'why a recovering replica answers no Prepare and joins no view change until it has a state (native/PROTOCOL.md, "Recovery")', 8);

  const part2 = 'run Part 2: `electrode-lab start --name lab06 --unsafe-no-recovery --dump-log lab06-committed`, then the README\'s steps up to `electrode-lab stop --name lab06`';
  const u = f.unsafe;
  c.fact('the unsafe case run', u?.elected !== undefined, `replica1 led view ${u?.elected?.view ?? '?'} after its restart without recovery`, u ? 'replica1 was restarted without recovery but led no view afterwards: bring replica2 back (`ip link set eth0 up`, then `kill -CONT` its pid) and run the client again' : part2);
  c.value('unsafe.new_view', { parse: asInt, expected: u?.elected?.view, noFact: part2, form: 'a view number', where: `the \`view V normal (elected)\` line of ${logs} (the unsafe start)` });
  c.value('unsafe.new_view_last_op', { parse: asInt, expected: u?.elected?.lastOp, noFact: part2, form: 'an op number', where: 'the `last op` of that line: how much of the log the new view kept' });
  c.value('unsafe.winner', { parse: asReplica, expected: u?.winner === undefined ? undefined : `replica${u.winner}`, noFact: part2, form: 'a replica', where: `the \`view V: the log of replica J wins\` line of ${logs}` });
  const s = u?.safety;
  const noVerdict = u ? (u.missing.length ? `the lab has not got ${u.missing.join(', ')} yet (README, Part 2)` : part2) : part2;
  c.fact('check-history inputs', s !== undefined, `history, ack log and ${s?.logs ?? 0} survivors' committed logs recorded`, noVerdict);
  const ch = 'the `acknowledged: A, lost: L (e.g. ...)` line of the README\'s `electrode-lab check-history` command';
  c.value('unsafe.acknowledged', { parse: asInt, expected: s?.acked, noFact: noVerdict, form: 'a count', where: ch });
  c.value('unsafe.lost', { parse: asInt, expected: s?.lostAcked, noFact: noVerdict, form: 'a count', where: `${ch}; give it the survivors' committed logs only (the replicas that were stopped, not killed: replica1's second life is its .1 file)` });
  const lostIds = new Set((s?.lostExamples ?? []).map((x) => asRequestId(x)).filter((x): x is string => Boolean(x)));
  c.value('unsafe.lost_example', {
    parse: asRequestId,
    expected: s ? [...lostIds][0] ?? '' : undefined,
    noFact: noVerdict,
    form: 'a request as check-history names it (client and request number, e.g. 135756554371073 1)',
    where: `one of the requests in the \`(e.g. ...)\` list of ${ch}`,
    equal: (a) => lostIds.has(a),
  });
  c.text('unsafe.why_lost', 'which replicas had acknowledged those writes, what each of them remembered when the new view formed, and which rule of the view change picked the log that has none of them', 12);
  c.text('unsafe.with_recovery', 'what the same steps do without --unsafe-no-recovery: can replica1 recover while replica0 is dead and replica2 cut off, and can any view form then? (README "Restarts, recovery and snapshots")', 8);
  return { lab: '06-comes-back', items: c.items };
}
