/**
 * Lab 01 (a leader dies): the facts are in the replicas' logs of the last
 * `start`: who noticed the leader's silence first, the view the cluster
 * settled in, its leader, and the last op carried over from view 0.
 */
import { asChoice, asInt, asReplica, Answers } from './answers.js';
import { Checker, Verdict } from './check.js';
import { Evidence } from './evidence.js';
import { eventsOf, lastRun } from './logs.js';

export interface Lab01Facts {
  n: number;
  f: number;
  /** Replicas with a run recorded by `start`. */
  ran: string[];
  /** Who logged "no word from leader 0", earliest first (time in seconds). */
  noticed: { node: string; t: number }[];
  /** The highest view any replica entered after the kill, its leader and the last op the new leader carried over. */
  settled?: { view: number; leader: string; lastOp: number };
}

export function lab01Facts(ev: Evidence): Lab01Facts {
  const n = ev.plan?.cluster.n ?? 3;
  const f = ev.plan?.cluster.f ?? 1;
  const runs = Object.fromEntries(Object.entries(ev.logs).map(([node, text]) => [node, lastRun(text)]));
  const ran = Object.entries(runs).filter(([, s]) => s?.start).map(([node]) => node).sort();
  const noticed = Object.entries(runs)
    .flatMap(([node, seg]) => eventsOf(seg, 'no-word').filter((e) => e.leader === 0).slice(0, 1).map((e) => ({ node, t: e.t })))
    .sort((a, b) => a.t - b.t);
  let settled: Lab01Facts['settled'];
  const normals = Object.entries(runs).flatMap(([node, seg]) => eventsOf(seg, 'normal').map((e) => ({ node, e })));
  const top = Math.max(0, ...normals.map((x) => x.e.view));
  if (top > 0) {
    const leader = top % n;
    const elected = normals.find((x) => x.e.view === top && x.e.how === 'elected' && x.node === `replica${leader}`);
    const any = normals.filter((x) => x.e.view === top).sort((a, b) => a.e.lastOp - b.e.lastOp)[0]!;
    const pick = elected ?? any;
    settled = { view: top, leader: `replica${leader}`, lastOp: pick.e.lastOp };
  }
  return { n, f, ran, noticed, settled };
}

const DVC = new Set(['doviewchange', 'do view change', 'do-view-change', 'dvc', '7']);

export function checkLab01(answers: Answers, ev: Evidence): Verdict {
  const facts = lab01Facts(ev);
  const c = new Checker(answers);
  const logs = 'the logs are <lab home>/labs/lab01/logs/<node>/replica.log; read what follows the last `electrode-lab start` line';
  c.fact('replicas started', facts.ran.length > 0, `runs recorded for ${facts.ran.join(', ')}`, 'no replica run is recorded: run `electrode-lab start --name lab01 --log-level debug` (README, "The normal case")');
  const killed = facts.noticed.length > 0 && facts.settled !== undefined;
  c.fact(
    'leader killed',
    killed,
    `after the kill the cluster reached view ${facts.settled?.view ?? '?'}`,
    'the last run shows no view change: kill replica0 (`kill -9 <pid>`, the PID is in `electrode-lab status --name lab01`), then run `electrode-lab client --name lab01 -n 2000`',
  );

  c.value('normal_case.prepare_type', { parse: asInt, expected: 3, form: 'a type number', where: 'the type table of native/PROTOCOL.md (byte 5 of the header)' });
  c.value('normal_case.prepare_ok_type', { parse: asInt, expected: 4, form: 'a type number', where: 'the type table of native/PROTOCOL.md (byte 5 of the header)' });
  c.value('normal_case.prepare_oks_needed', { parse: asInt, expected: facts.f, form: 'a count', where: `a quorum is the leader plus f PrepareOKs (native/PROTOCOL.md, "Protocol"); n = ${facts.n}` });
  c.text('normal_case.explain', 'why f PrepareOKs and not f+1: whose vote does the leader already have?');
  c.value('normal_case.heartbeat_ms', {
    parse: asInt,
    expected: 50,
    form: 'milliseconds',
    where: 'capture with the filter `udp[13] == 5` and compare the timestamps of consecutive Commits (the replica\'s --heartbeat-ms)',
    equal: (a) => a >= 40 && a <= 60,
  });
  c.text('normal_case.without_heartbeats', 'what a follower does when it hears nothing from its leader (native/PROTOCOL.md, "View change")');

  const first = facts.noticed[0];
  c.value('leader_kill.first_to_notice', {
    parse: asReplica,
    expected: first?.node,
    noFact: 'kill the leader first',
    form: 'a replica (replica1)',
    where: `the earliest "no word from leader 0" line in replica1's and replica2's logs (${logs})`,
    // two replicas noticing within the same millisecond are both first
    equal: (a) => facts.noticed.some((x) => x.node === a && x.t - first!.t < 0.001),
  });
  c.value('leader_kill.new_view', { parse: asInt, expected: facts.settled?.view, noFact: 'kill the leader first', form: 'a view number', where: `the highest "view N normal" line of the survivors (${logs})` });
  c.value('leader_kill.new_leader', { parse: asReplica, expected: facts.settled?.leader, noFact: 'kill the leader first', form: 'a replica (replica1)', where: 'the leader of view v is replica v % n; its log says "(me)"' });
  c.value('leader_kill.old_view_last_op', {
    parse: asInt,
    expected: facts.settled?.lastOp,
    noFact: 'kill the leader first',
    form: 'an op number',
    where: 'the "last op" of the new leader\'s "view N normal (elected)" line: what it took over from view 0',
  });
  c.text('leader_kill.timeline', 'StartViewChange, DoViewChange and StartView in the order the logs show them (run `start` with --log-level debug to see each message)', 8);
  c.value('leader_kill.logs_carried_by', {
    parse: asChoice,
    expected: 'doviewchange',
    form: 'a message name',
    where: 'native/PROTOCOL.md, the message table: which message carries an entry list to the new leader?',
    equal: (a) => DVC.has(a),
  });
  c.text('leader_kill.winning_log', 'native/PROTOCOL.md, "View change": the log with the highest (last normal view, last op) wins; say why that keeps committed ops');
  c.text('leader_kill.client_found_leader', 'native/PROTOCOL.md, "Binaries": what the client does after --timeout-ms, and how it learns the view from a reply');
  return { lab: '01-view-change', items: c.items };
}
