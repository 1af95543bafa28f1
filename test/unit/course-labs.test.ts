/**
 * The pure parts of the course labs (src/course/): log runs and events, the
 * answers file, the checker, each lab's facts and check over synthetic
 * evidence, the crash hunt's fault derivation, and the registry's
 * templates agreeing with its checks.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { asInt, asList, asNumber, asReplica, asSignal, leafKeys, parseAnswers } from '../../src/course/answers.js';
import { Checker, formatVerdict, verdictOk } from '../../src/course/check.js';
import { CRASH_HUNT_FAULTS, UPSTREAM_PORT, asFault, attachOrder, checkLab05, faultOf, plantedPeerTable, seedFor } from '../../src/course/crashhunt.js';
import { Evidence, StatsReading, newRecord, parseStatsReadings, statsReadingLine } from '../../src/course/evidence.js';
import { checkLab01, lab01Facts } from '../../src/course/lab01.js';
import { checkLab02, lab02Facts } from '../../src/course/lab02.js';
import { checkLab03, lab03Facts } from '../../src/course/lab03.js';
import { checkLab04, lab04Facts } from '../../src/course/lab04.js';
import { logLines, logTimeFields, parseLogLine } from '../../src/core/logline.js';
import { normalViews } from '../../src/bench/nemesis.js';
import { boundaryLine, lastNormalView, lastRun, parseHow, runSegments, startHow } from '../../src/course/logs.js';
import { LABS, answersTemplate, findLab, missingToolLines } from '../../src/course/registry.js';
import { labStateText, upCommandOf } from '../../src/course/status.js';
import { planFromInputs, fnv1a } from '../../src/core/plan.js';
import { NodeBpfStats, StatCounters } from '../../src/lab/bpf.js';
import { ResultsFile, TrialRecord } from '../../src/bench/types.js';
import { DiagnosticsError } from '../../src/core/diagnostics.js';

const ROOT = join(import.meta.dirname, '..', '..');
const T0 = 1_796_000_000;
/** A replica log line as native/src/util.c writes it (epoch, UTC, tag, level). */
const line = (t: number, i: number, msg: string, level = 'info') => `${logTimeFields(T0 + t)} replica${i} ${level}: ${msg}`;
const boundary = (t: number, how: string) => boundaryLine(new Date((T0 + t) * 1000), how);
const ALL = startHow({ fastPaths: 'broadcast,quorum,reply', xdp: 'auto', log: 'info' });

function emptyEvidence(over: Partial<Evidence> = {}): Evidence {
  return { logs: {}, stats: [], runs: [], ...over };
}

const zero = (): StatCounters => ({ seen: 0, passed: 0, dropped: 0, cloned: 0, replied: 0, fallback: 0, full: 0, errors: 0 });
function nodeStats(node: string, set: Partial<Record<'dispatch' | 'broadcast' | 'quorum' | 'reply' | 'egress', Partial<StatCounters>>> = {}): NodeBpfStats {
  const s = { node, dispatch: zero(), broadcast: zero(), quorum: zero(), reply: zero(), egress: zero() };
  for (const [k, v] of Object.entries(set)) Object.assign(s[k as keyof typeof set], v);
  return s;
}
const reading = (t: number, nodes: NodeBpfStats[], lab = 'lab'): StatsReading => ({ at: new Date((T0 + t) * 1000).toISOString(), lab, nodes });

describe('replica log lines (native/src/util.c el_log; src/core/logline.ts)', () => {
  it('the line el_log writes: epoch first, then the UTC time of day, tag, level, text', () => {
    const l = '1796000000.004217 2026-11-30T00:53:20.004217Z replica1 info: view 1 normal (elected), leader 1 (me), last op 3, commit 3';
    expect(parseLogLine(l)).toEqual({ t: 1796000000.004217, utc: '2026-11-30T00:53:20.004217Z', tag: 'replica1', level: 'info', text: 'view 1 normal (elected), leader 1 (me), last op 3, commit 3' });
    // the two fields say the same instant
    expect(new Date(parseLogLine(l)!.utc!).getTime() / 1000).toBeCloseTo(parseLogLine(l)!.t, 3);
    expect(logTimeFields(1796000000.004217)).toBe('1796000000.004217 2026-11-30T00:53:20.004217Z');
  });

  it('logs from before the UTC field still parse (older work folders still check)', () => {
    expect(parseLogLine('1796000000.004217 replica2 warn: no word from leader 0 for 412 ms')).toEqual({ t: 1796000000.004217, tag: 'replica2', level: 'warn', text: 'no word from leader 0 for 412 ms' });
    const old = ['1796000000.000000 replica1 info: replica 1 ready on x', '1796000005.500000 replica1 info: view 1 normal (elected), leader 1 (me), last op 3, commit 3'].join('\n');
    expect(lastNormalView(lastRun(old))).toBe(1);
    expect(normalViews(old)).toEqual([{ atMs: 1796000005500, view: 1 }]);
  });

  it('not a log line: tcpdump output, a tag without a level, garbage', () => {
    for (const l of ['02:40:00.123456 IP 10.79.1.10.51000 > 10.79.1.11.51001: UDP, length 56', '1796000000.1 2026-11-30T00:53:20.1Z replica1 view 1 normal', 'garbage']) expect(parseLogLine(l)).toBeUndefined();
    expect(logLines(['garbage', line(1, 0, 'x'), ''].join('\n'))).toHaveLength(1);
  });

  it('the nemesis reads view entries with microseconds, in the new format and the old', () => {
    const text = [line(5.25, 1, 'view 1 normal (elected), leader 1 (me), last op 3, commit 3'), line(5.3, 2, 'view 1 normal (StartView), leader 1, last op 3, commit 3', 'debug'), line(6, 2, 'view change: view 1 -> 2 (new leader 2), last op 3, commit 3')].join('\n');
    expect(normalViews(text)).toEqual([{ atMs: (T0 + 5.25) * 1000, view: 1 }]);
  });

  it('boundary lines carry the same two time fields and are still read from older logs', () => {
    const at = new Date((T0 + 1.5) * 1000);
    expect(boundary(1.5, ALL)).toMatch(/^1796000001\.500000 2026-11-30T00:53:21\.500000Z electrode-lab start: run 2026-11-30T00:53:21\.500Z \(/);
    const older = `${(T0 + 1.5).toFixed(6)} electrode-lab start: run ${at.toISOString()} (${ALL})\n${line(2, 0, 'replica 0 ready on x')}`;
    expect(runSegments(older)[0]!.start).toEqual({ t: T0 + 1.5, iso: at.toISOString(), how: ALL });
  });
});

describe('replica logs: runs and events', () => {
  const log = [
    line(0, 1, 'replica 1 ready on 10.0.0.11:51001 (n=3 f=1 batch=1 mtu=1500)'),
    line(1, 1, 'stats: rx 10, malformed 0, ... last op 7, commit 7'),
    boundary(10, ALL),
    line(10.1, 1, 'replica 1 ready on 10.0.0.11:51001 (n=3 f=1 batch=1 mtu=1500 bpf)'),
    line(12, 1, 'no word from leader 0 for 412 ms'),
    line(12, 1, 'view change: view 0 -> 1 (new leader 1), last op 3, commit 3'),
    line(12.01, 1, 'view 1 normal (elected), leader 1 (me), last op 3, commit 3'),
    'garbage that is not a log line',
  ].join('\n');

  it('splits at boundary lines; the lines before the first form a run of their own', () => {
    const runs = runSegments(log);
    expect(runs).toHaveLength(2);
    expect(runs[0]!.start).toBeUndefined();
    expect(runs[0]!.events.map((e) => e.kind)).toEqual(['ready', 'exit']);
    expect(runs[1]!.start).toMatchObject({ how: ALL });
    expect(runs[1]!.events.map((e) => e.kind)).toEqual(['ready', 'no-word', 'view-change', 'normal']);
    expect(lastRun(log)!.lines).toHaveLength(5);
  });

  it('parses the events the labs ask about', () => {
    const r = lastRun(log)!;
    expect(r.events[1]).toMatchObject({ kind: 'no-word', leader: 0, ms: 412 });
    expect(r.events[2]).toMatchObject({ kind: 'view-change', from: 0, to: 1, leader: 1, lastOp: 3 });
    expect(r.events[3]).toMatchObject({ kind: 'normal', view: 1, how: 'elected', leader: 1, me: true, lastOp: 3 });
    expect(lastNormalView(r)).toBe(1);
    expect(lastNormalView(runSegments(line(0, 2, 'replica 2 ready on x'))[0])).toBe(0);
  });

  it('start says how it started, and that can be read back', () => {
    const how = startHow({ fastPaths: 'broadcast', xdp: 'generic', log: 'debug', replicaArgs: '0:--fast-broadcast' });
    expect(parseHow(how)).toEqual({ fastPaths: 'broadcast', xdp: 'generic', log: 'debug', replicaArgs: '0:--fast-broadcast' });
    expect(boundaryLine(new Date('2026-12-01T10:00:00.000Z'), how)).toBe(`1796119200.000000 2026-12-01T10:00:00.000000Z electrode-lab start: run 2026-12-01T10:00:00.000Z (${how})`);
  });
});

describe('recovery lines (real, from a 3-replica loopback run of native/build/replica)', () => {
  // every replica starts RECOVERING and logs these before and after `ready on`
  const r0 = [
    '1796622501.205552 2026-12-07T05:48:21.205552Z replica0 info: recovering: started without state; asking the other 2 replicas (nonce 0xefc95f950e6dcee0)',
    '1796622501.205925 2026-12-07T05:48:21.205925Z replica0 info: replica 0 ready on 127.0.0.1:47310 (n=3 f=1 batch=1 mtu=1500)',
    '1796622501.258073 2026-12-07T05:48:21.258073Z replica0 info: view 0 normal (new cluster: every replica started without state), leader 0 (me), last op 0, commit 0',
    '1796622501.258666 2026-12-07T05:48:21.258666Z replica0 info: view 0: 1 followers are normal in the new cluster: taking requests',
  ];
  const r1 = [
    '1796622501.206552 2026-12-07T05:48:21.206552Z replica1 info: recovering: started without state; asking the other 2 replicas (nonce 0xefc95f950e6dcee1)',
    '1796622501.207925 2026-12-07T05:48:21.207925Z replica1 info: replica 1 ready on 127.0.0.1:47311 (n=3 f=1 batch=1 mtu=1500)',
    '1796622501.258073 2026-12-07T05:48:21.258073Z replica1 info: view 0 normal (new cluster: every replica started without state), leader 0, last op 0, commit 0',
    '1796622502.542949 2026-12-07T05:48:22.542949Z replica1 info: no word from leader 0 for 323 ms',
    '1796622502.542971 2026-12-07T05:48:22.542971Z replica1 info: view change: view 0 -> 1 (new leader 1), last op 100, commit 99',
    '1796622502.543087 2026-12-07T05:48:22.543087Z replica1 info: view 1 normal (elected), leader 1 (me), last op 100, commit 99',
    '1796622503.227141 2026-12-07T05:48:23.227141Z replica1 info: snapshot: serving op 100 (2031 bytes, 79 keys, 1 clients, log to op 100) to replica 0',
  ];
  const r2 = [
    '1796622501.210264 2026-12-07T05:48:21.210264Z replica2 info: recovering: started without state; asking the other 2 replicas (nonce 0x790e81e85010f737)',
    '1796622501.210381 2026-12-07T05:48:21.210381Z replica2 info: replica 2 ready on 127.0.0.1:47312 (n=3 f=1 batch=1 mtu=1500)',
    '1796622501.210445 2026-12-07T05:48:21.210445Z replica2 info: view 0 normal (new cluster: every replica started without state), leader 0, last op 0, commit 0',
    '1796622502.543027 2026-12-07T05:48:22.543027Z replica2 info: view change: view 0 -> 1 (new leader 1), last op 100, commit 99',
    '1796622502.543116 2026-12-07T05:48:22.543116Z replica2 info: view 1 normal (StartView), leader 1, last op 100, commit 99',
  ];
  // replica0 restarted after the view change: it recovers into view 1 from its leader
  const r0back = [
    '1796622503.226982 2026-12-07T05:48:23.226982Z replica0 info: recovering: started without state; asking the other 2 replicas (nonce 0xf1b93d676ff60fa7)',
    '1796622503.227087 2026-12-07T05:48:23.227087Z replica0 info: replica 0 ready on 127.0.0.1:47310 (n=3 f=1 batch=1 mtu=1500)',
    '1796622503.227112 2026-12-07T05:48:23.227112Z replica0 info: recovering: 2 replicas are normal; replica 1 leads view 1 (last op 100): fetching its state',
    '1796622503.227223 2026-12-07T05:48:23.227223Z replica0 info: snapshot: installed op 100 (2031 bytes, 79 keys, 1 clients, log to op 100) from replica 1',
    '1796622503.227226 2026-12-07T05:48:23.227226Z replica0 info: view 1 normal (recovered from replica 1), leader 1, last op 100, commit 100',
  ];
  const stuck = [
    '1796622505.847777 2026-12-07T05:48:25.847777Z replica1 info: recovering: started without state; asking the other 2 replicas (nonce 0x94f84589975e30a9)',
    '1796622505.847916 2026-12-07T05:48:25.847916Z replica1 info: replica 1 ready on 127.0.0.1:47311 (n=3 f=1 batch=1 mtu=1500)',
    '1796622510.847956 2026-12-07T05:48:30.847956Z replica1 error: recovering for 5 s and cannot complete: it needs 2 replicas in normal status, among them the leader of the latest view (or all 2 holding nothing, for a new cluster); this replica takes part in nothing until then. This round: replica 0: no answer; replica 2: no answer',
  ];
  const run = (lines: string[]) => [boundary(-1, ALL), ...lines].join('\n');

  it('each line is an event with its numbers', () => {
    expect(lastRun(run(r0back))!.events).toEqual([
      { t: 1796622503.226982, kind: 'recovering', why: 'started without state' },
      { t: 1796622503.227087, kind: 'ready', replica: 0 },
      { t: 1796622503.227112, kind: 'recovery-fetch', from: 1, view: 1, lastOp: 100 },
      { t: 1796622503.227223, kind: 'snapshot-installed', op: 100, bytes: 2031, keys: 79, clients: 1, logTo: 100, from: 1 },
      { t: 1796622503.227226, kind: 'normal', view: 1, how: 'recovered from replica 1', leader: 1, me: false, lastOp: 100, commit: 100, recoveredFrom: 1 },
    ]);
    expect(lastRun(run(r1))!.events.map((e) => e.kind)).toEqual(['recovering', 'ready', 'normal', 'no-word', 'view-change', 'normal', 'snapshot-served']);
    expect(lastRun(run(stuck))!.events.at(-1)).toMatchObject({ kind: 'recovery-stuck', seconds: 5 });
    expect(lastNormalView(lastRun(run(stuck)))).toBe(0);
    expect(lastNormalView(lastRun(run(r0back)))).toBe(1);
  });

  it('lab 01 reads the same facts from logs that begin with recovery', () => {
    const plan = planFromInputs([{ name: 'lab01', replicas: 3, provider: 'netns', subnet: '10.79.1.0/24' }]);
    const f = lab01Facts(emptyEvidence({ plan, logs: { replica0: run(r0), replica1: run(r1), replica2: run(r2) } }));
    expect(f.ran).toEqual(['replica0', 'replica1', 'replica2']);
    expect(f.noticed.map((x) => x.node)).toEqual(['replica1']);
    expect(f.settled).toEqual({ view: 1, leader: 'replica1', lastOp: 100 });
    // replica0 brought back later: its recovered entry into view 1 does not change what the leader carried over
    const again = lab01Facts(emptyEvidence({ plan, logs: { replica0: run([...r0, ...r0back]), replica1: run(r1), replica2: run(r2) } }));
    expect(again.settled).toEqual({ view: 1, leader: 'replica1', lastOp: 100 });
  });

  it('lab 03 reads a broadcast run that begins with recovery', () => {
    const plan = planFromInputs([{ name: 'lab03', replicas: 3, provider: 'netns', subnet: '10.79.3.0/24' }]);
    const bc = (lines: string[]) => [boundary(-1, startHow({ fastPaths: 'broadcast', xdp: 'auto', log: 'info' })), ...lines].join('\n');
    const f = lab03Facts(emptyEvidence({ plan, logs: { replica0: bc(r0), replica1: bc(r1), replica2: bc(r2) } }));
    expect(f.disagree).toEqual({ noticedBy: ['replica1'], finalView: 1, finalLeader: 'replica1' });
  });
});

describe('answers files', () => {
  const known = ['a.b', 'a.c', 'd'];
  it('reports unknown (misspelt) keys with the likely one, and YAML errors', () => {
    const r = parseAnswers('a:\n  b: 1\n  x: 2\nc: 3\n', 'answers.yaml', known);
    expect(r.diagnostics.map((d) => d.subject)).toEqual(['answers.yaml: a.x', 'answers.yaml: c']);
    expect(r.diagnostics[1]!.hint).toMatch(/did you mean a\.c/);
    expect(parseAnswers('a: [1\n', 'f', known).diagnostics[0]!.code).toBe('ANSWERS_YAML');
    expect(parseAnswers('- 1\n', 'f', known).diagnostics[0]!.code).toBe('ANSWERS_SHAPE');
    expect(parseAnswers('', 'f', known)).toEqual({ answers: {}, diagnostics: [] });
  });
  it('reads values the way students write them', () => {
    expect([asInt('3'), asInt(3), asInt(' 3 '), asInt('3.5'), asInt('x')]).toEqual([3, 3, 3, undefined, undefined]);
    expect([asNumber('1.23x'), asNumber(1.2), asNumber('+23%')]).toEqual([1.23, 1.2, undefined]);
    expect([asReplica('replica1'), asReplica(1), asReplica('r2'), asReplica('leader')]).toEqual(['replica1', 'replica1', 'replica2', undefined]);
    expect([asSignal('segv'), asSignal('SIGSEGV'), asSignal(11), asSignal('11'), asSignal('SIGFOO')]).toEqual(['SIGSEGV', 'SIGSEGV', 'SIGSEGV', 'SIGSEGV', undefined]);
    expect(asList('a <- b <- c')).toEqual(['a', 'b', 'c']);
    expect(asList(['a', 'b', null])).toEqual(['a', 'b']);
  });
  it('leafKeys walks nested mappings', () => {
    expect(leafKeys(parseDocument('a:\n  b:\n  c:\n    d: 1\ne: x\n').toJS())).toEqual(['a.b', 'a.c.d', 'e']);
  });
});

describe('the checker', () => {
  it('says right, wrong (with where to look) and missing, and only all-right is ok', () => {
    const c = new Checker({ x: 3, y: 4, z: '', t: 'two words', u: 'not a number' });
    c.value('x', { parse: asInt, expected: 3, form: 'a count', where: 'look here' });
    c.value('y', { parse: asInt, expected: 3, form: 'a count', where: 'look there' });
    c.value('z', { parse: asInt, expected: 3, form: 'a count', where: 'look' });
    c.value('u', { parse: asInt, expected: 3, form: 'a count', where: 'look' });
    c.value('x', { parse: asInt, expected: undefined, noFact: 'run the thing', form: 'a count', where: 'look' });
    c.text('t', 'explain');
    expect(c.items.map((i) => i.status)).toEqual(['ok', 'wrong', 'missing', 'wrong', 'missing', 'wrong']);
    expect(c.items[1]!.message).toBe('you wrote 4; look there');
    expect(c.items[3]!.message).toMatch(/'not a number' is not a count/);
    expect(c.items[4]!.message).toMatch(/cannot be checked yet: run the thing/);
    const v = { lab: 'x', items: c.items };
    expect(verdictOk(v)).toBe(false);
    expect(formatVerdict(v).split('\n')[0]).toBe('lab x: 1 of 6 right, 3 wrong, 2 missing');
    expect(verdictOk({ lab: 'x', items: [c.items[0]!] })).toBe(true);
    expect(verdictOk({ lab: 'x', items: [] })).toBe(false);
  });
});

describe('registry', () => {
  it('finds labs by id, number and folder name; lists them otherwise', () => {
    expect(findLab('1').slug).toBe('01-view-change');
    expect(findLab('05-crash-hunt').id).toBe('05');
    expect(findLab('fast-paths').id).toBe('03');
    expect(findLab('04-upstream').id).toBe('04');
    expect(findLab('comes-back').id).toBe('06');
    expect(() => findLab('99')).toThrow(DiagnosticsError);
  });
  it('every lab has its own lab name, subnet and prefix lab0', () => {
    const names = LABS.flatMap((l) => [l.spec.name, ...l.extraLabs]);
    expect(new Set(names).size).toBe(names.length);
    expect(names.every((n) => n.startsWith('lab0'))).toBe(true);
    expect(new Set(LABS.map((l) => l.spec.subnet)).size).toBe(LABS.length);
    expect(upCommandOf(findLab('02'))).toBe('electrode-lab up 7 --provider netns --name lab02 --subnet 10.79.2.0/24');
  });
  for (const def of LABS) {
    it(`${def.slug}: the answers template has exactly the keys the check judges`, () => {
      const keys = leafKeys(parseDocument(readFileSync(answersTemplate(def, ROOT), 'utf8')).toJS());
      const judged = def.check({}, emptyEvidence()).items.map((i) => i.key).filter((k) => !k.startsWith('lab: '));
      expect(keys.sort()).toEqual([...new Set(judged)].sort());
      // an empty template is never "done"
      expect(verdictOk(def.check({}, emptyEvidence()))).toBe(false);
      expect(def.hints.length).toBeGreaterThanOrEqual(3);
    });
  }
  it('lab start names a missing tool and its package; nothing when all are there', () => {
    const lab01 = findLab('01');
    expect(missingToolLines(lab01, () => false)).toEqual([
      "tcpdump is not installed and lab 01's README runs it: `apt-get install tcpdump` (or run .ci/setup, which installs it); the rest of the lab works without it",
    ]);
    expect(missingToolLines(lab01, (c) => c === 'tcpdump')).toEqual([]);
    expect(missingToolLines(findLab('02'), () => false)).toEqual([]);
  });
  it('every tool a lab names is one .ci/setup installs', () => {
    const pkgs = readFileSync(join(ROOT, '.ci', 'packages.txt'), 'utf8').split('\n').map((l) => l.replace(/#.*/, '').trim()).filter(Boolean);
    for (const t of LABS.flatMap((l) => l.tools ?? [])) expect(pkgs, t.command).toContain(t.debianPackage);
  });
  it('lab list states', () => {
    const rec = newRecord('01-view-change', 'lab01', new Date('2026-12-01T10:00:00Z'));
    expect(labStateText({ up: false, running: 0 })).toBe('not started');
    expect(labStateText({ up: true, replicas: 3, running: 2, record: rec })).toBe('up, 2/3 replicas running; started 2026-12-01 10:00');
    rec.checks.push({ at: '2026-12-05T09:30:00.000Z', right: 5, total: 9, ok: false });
    rec.hintsShown = 2;
    // the date says when: a record from an earlier clone on this machine reads as old, not as this student's
    expect(labStateText({ up: false, running: 0, record: rec })).toBe('checked 2026-12-05 09:30: 5/9 right; 2 hint(s) shown');
  });
});

describe('lab 01 facts and check', () => {
  const plan = planFromInputs([{ name: 'lab01', replicas: 3, provider: 'netns', subnet: '10.79.1.0/24' }]);
  const logs = {
    replica0: [boundary(0, ALL), line(0.1, 0, 'replica 0 ready on x')].join('\n'),
    replica1: [boundary(0, ALL), line(0.1, 1, 'replica 1 ready on x'), line(5.0004, 1, 'no word from leader 0 for 450 ms'), line(5.01, 1, 'view change: view 0 -> 1 (new leader 1), last op 3, commit 3'), line(5.02, 1, 'view 1 normal (elected), leader 1 (me), last op 3, commit 3')].join('\n'),
    replica2: [boundary(0, ALL), line(0.1, 2, 'replica 2 ready on x'), line(5.0001, 2, 'no word from leader 0 for 420 ms'), line(5.0002, 2, 'view change: view 0 -> 1 (new leader 1), last op 3, commit 2'), line(5.03, 2, 'view 1 normal (StartView), leader 1, last op 3, commit 3')].join('\n'),
  };
  const ev = emptyEvidence({ plan, logs });
  const right = {
    normal_case: { prepare_type: 3, prepare_ok_type: 4, prepare_oks_needed: 1, explain: 'the leader counts itself', heartbeat_ms: 50, without_heartbeats: 'followers start a view change' },
    leader_kill: {
      first_to_notice: 'replica2', new_view: 1, new_leader: 'replica1', old_view_last_op: 3,
      timeline: 'replica2 and replica1 send StartViewChange, then DoViewChange to replica1, which sends StartView',
      logs_carried_by: 'DoViewChange', winning_log: 'the highest normal view and op number', client_found_leader: 'it resent to every replica',
    },
  };
  it('reads who noticed first, the settled view, its leader and the carried-over op', () => {
    const f = lab01Facts(ev);
    expect(f.noticed.map((x) => x.node)).toEqual(['replica2', 'replica1']);
    expect(f.settled).toEqual({ view: 1, leader: 'replica1', lastOp: 3 });
  });
  it('passes right answers; names wrong and missing ones', () => {
    expect(verdictOk(checkLab01(right, ev))).toBe(true);
    // replica1 noticed 0.3 ms later: the same millisecond counts as first too
    expect(verdictOk(checkLab01({ ...right, leader_kill: { ...right.leader_kill, first_to_notice: 'replica1' } }, ev))).toBe(true);
    const v = checkLab01({ ...right, leader_kill: { ...right.leader_kill, new_view: 2, timeline: '' } }, ev);
    expect(v.items.filter((i) => i.status !== 'ok').map((i) => `${i.status} ${i.key}`)).toEqual(['wrong leader_kill.new_view', 'missing leader_kill.timeline']);
  });
  it('without a kill in the last run it says what to do', () => {
    const v = checkLab01(right, emptyEvidence({ plan, logs: { replica1: [boundary(0, ALL), line(0.1, 1, 'replica 1 ready on x')].join('\n') } }));
    expect(v.items.find((i) => i.key === 'lab: leader killed')).toMatchObject({ status: 'missing', message: expect.stringMatching(/kill replica0/) });
  });
});

function record(seq: number, arm: TrialRecord['arm'], replicas: number, threads: number, tput: number, crashes: TrialRecord['crashes'] = []): TrialRecord {
  return {
    seq, replicas, arm, threads, repeat: 0, nemesis: 'none', status: 'ok', crashed: crashes.length > 0, startedAt: '', wallMs: 0, requests: 1, completed: 1, errors: 0, timeouts: 0,
    duration_s: 1, throughput_ops: tput, latency_us: { p50: 100, p90: 1, p95: 1, p99: 1 }, clientExitCode: 0, crashes,
  };
}
function results(lab: string, records: TrialRecord[]): ResultsFile {
  return { kind: 'electrode-lab-bench-results', version: 1, id: `20261201T000000Z-${lab}`, lab, createdAt: '', outcome: 'complete', options: { lab, replicas: [3, 5], arms: ['baseline', 'broadcast', 'quorum', 'reply', 'all'], threads: [1, 8], repeat: 1, warmup: 0, stopOnCrash: false, keepLab: false, timeoutMs: 1 }, skipped: [], records };
}

describe('lab 02 facts and check', () => {
  const plan = planFromInputs([{ name: 'lab02', replicas: 7, provider: 'netns', subnet: '10.79.2.0/24' }]);
  const crash = { node: 'replica3', process: 'replica', pid: 77, signal: 'SIGSEGV', topFrames: ['crash_on_purpose', 'execute_one', 'commit_to', 'on_prepare', 'vr_receive'], dir: 'crashes/replica3-77' };
  const base = { node: 'replica3', process: 'replica', pid: 66, signal: 'SIGSEGV', topFrames: crash.topFrames, dir: 'crashes/replica3-66' };
  const ev = emptyEvidence({
    plan,
    logs: { replica0: [boundary(0, ALL), line(0.1, 0, 'replica 0 ready on x'), line(9, 0, 'stats: rx 1, ... view 0, first op 1, last op 2000, commit 2000')].join('\n') },
    stats: [reading(5, [nodeStats('replica0', { broadcast: { passed: 2084, cloned: 10420 } })], 'lab02')],
    runs: [{
      id: 'r1',
      results: results('lab02-crash', [record(0, 'baseline', 5, 1, 1, [base]), record(1, 'all', 5, 1, 1, [crash])]),
      crashes: [
        { dir: base.dir, info: base, backtrace: '', bpf: { attached: false }, logTail: '', dmesg: '' },
        { dir: crash.dir, info: crash, backtrace: '', bpf: { ctrl: { view: 0 } as never }, logTail: line(0, 3, 'replica 3 ready on x'), dmesg: 'replica[77]: segfault at 0 ip 000055 sp 0007 error 6 in replica[55+8000]' },
      ],
    }],
  });
  const right = {
    one_plan: { replica6_mac: plan.nodes[6]!.mac, mac_rule: 'lab name two bytes, role, index', eight_replicas_code: 'SPEC_EVEN_REPLICAS', nine_replicas: 'nothing at all, just the count', sizes_from: 'files/peers.table', max_replicas: 15, explain: 'the verifier needs bounded loops' },
    clones: { passed: 2084, cloned: 10420, per_frame: 5, operations: 2000, commits: 84 },
    crash: { folder: 'replica3-77', node: 3, signal: 'segv', top_frames: ['crash_on_purpose', 'execute_one', 'commit_to', 'on_prepare'], protocol_step: 'Prepare', delivered_by: 'socket', kernel_view: 0, log_view: 0, why_el_ctrl: 'the fast reply would use a stale view', fault_address: '0x0', find_instruction: 'ip minus the base, then addr2line' },
    assertions: { never_add: '-DNDEBUG', explain: 'the bug runs on silently as undefined behaviour' },
  };
  it('picks the all trial\'s crash folder and reads its facts', () => {
    const f = lab02Facts(ev);
    expect(f.crash).toMatchObject({ dir: 'crashes/replica3-77', step: 'prepare', via: 'socket', kernelView: 0, logView: 0, faultAddress: '0' });
    // a Prepare the fast reply put in the ring buffer
    const ring = { ...crash, topFrames: ['crash_on_purpose', 'execute_one', 'commit_to', 'commit_to', 'vr_kernel_record', 'on_record'] };
    const f2 = lab02Facts({ ...ev, runs: [{ ...ev.runs[0]!, crashes: [{ ...ev.runs[0]!.crashes[1]!, info: ring }] }] });
    expect(f2.crash).toMatchObject({ step: 'prepare', via: 'ring' });
    expect(f.crashDirs).toEqual(['crashes/replica3-66', 'crashes/replica3-77']);
  });
  it('passes right answers; the baseline folder, a reading never taken and a wrong count are wrong', () => {
    expect(checkLab02(right, ev).items.filter((i) => i.status !== 'ok')).toEqual([]);
    const v = checkLab02({ ...right, crash: { ...right.crash, folder: 'replica3-66' }, clones: { ...right.clones, cloned: 10000, per_frame: 6 } }, ev);
    expect(v.items.filter((i) => i.status !== 'ok').map((i) => i.key)).toEqual(['clones.passed', 'clones.cloned', 'clones.per_frame', 'clones.operations', 'clones.commits', 'crash.folder']);
    expect(v.items.find((i) => i.key === 'clones.cloned')!.message).toMatch(/the last one: passed 2084, cloned 10420/);
  });
});

describe('lab 03 facts and check', () => {
  const plan = planFromInputs([{ name: 'lab03', replicas: 5, provider: 'netns', subnet: '10.79.3.0/24' }]);
  const BC = startHow({ fastPaths: 'broadcast', xdp: 'auto', log: 'info' });
  const GEN = startHow({ fastPaths: 'broadcast,quorum,reply', xdp: 'generic', log: 'info' });
  const REF = startHow({ fastPaths: 'quorum', xdp: 'auto', log: 'info', replicaArgs: '0:--fast-broadcast' });
  const log = (i: number, extra: Record<string, string[]>) =>
    [ALL, GEN, ALL, BC, REF].flatMap((how, k) => [boundary(k * 100, how), line(k * 100 + 0.1, i, `replica ${i} ready on x`), ...(extra[String(k)] ?? []), ...(i === 2 && k === 2 ? [] : [line(k * 100 + 50, i, 'stats: rx 1, last op 1')])]).join('\n');
  const logs: Record<string, string> = {};
  for (let i = 0; i < 5; i++) {
    logs[`replica${i}`] = log(i, {
      '3': [...(i === 3 || i === 4 ? [line(320, i, 'no word from leader 0 for 400 ms')] : []), line(320.5, i, `view 1 normal (${i === 1 ? 'elected' : 'StartView'}), leader 1${i === 1 ? ' (me)' : ''}, last op 9, commit 9`)],
      '4': i === 0 ? [line(400.2, 0, '--fast-broadcast given but the eBPF side has it switched off (el_config.enabled=0x2 in /x): run `electrode-lab attach --broadcast` (or ...)', 'error')] : [],
    });
  }
  const bench = results('lab03-bench', [
    record(0, 'baseline', 5, 1, 1000), record(1, 'all', 5, 1, 1500), record(2, 'reply', 5, 1, 1600),
    record(3, 'baseline', 5, 8, 2000), record(4, 'all', 5, 8, 2500), record(5, 'broadcast', 5, 8, 2400),
    record(6, 'baseline', 3, 1, 1000), record(7, 'all', 3, 1, 900), record(8, 'baseline', 3, 8, 1000), record(9, 'all', 3, 8, 1234),
  ]);
  const ev = emptyEvidence({
    plan,
    logs,
    stats: [reading(20, [nodeStats('replica0', { quorum: { seen: 20049, passed: 5049, dropped: 15000 } })]), reading(260, [nodeStats('replica2', { reply: { replied: 0, fallback: 1000 } })])],
    runs: [{ id: 'b', results: bench, crashes: [] }],
  });
  it('finds the generic run, the killed follower, the broken-broadcast view change, the refusal and the speedups', () => {
    const f = lab03Facts(ev);
    expect(f.genericRun).toBe(true);
    expect(f.deadAfter).toBeCloseTo(T0 + 200.1, 3);
    expect(f.disagree).toEqual({ noticedBy: ['replica3', 'replica4'], finalView: 1, finalLeader: 'replica1' });
    expect(f.refusal).toMatch(/--fast-broadcast given/);
    expect(f.speedups['5/1']).toEqual({ all: 1.5, reply: 1.6 });
    expect(f.best).toMatchObject({ '5/1': 'reply', '5/8': 'all', '3/1': 'baseline' });
  });
  const right = {
    counters: { quorum_seen: 20049, quorum_passed: 5049, quorum_dropped: 15000, expected_seen_per_op: 4, expected_passed_per_op: 1, expected_dropped_per_op: 3, passed_also: 'the followers periodic reports' },
    reply: { refuses: 'gaps, other views, view changes', out_of_order: 'the ack is cumulative so it lies' },
    xdp: { generic_vs_native: 'generic runs after the skb' },
    lease: { replied: 0, fallback: 1000, stops_acking: 'EL_FR_LEASE', ms: 50, who_renews: 'the replica every tick' },
    disagree: { compare: 'the second run crawled badly', noticed_by: 'replica4, replica3', final_view: 1, final_leader: 'replica1', why_crawl: 'retransmissions reach the others', why_cured: 'replica1 has its own TC hook', refusal_fix: 'electrode-lab attach --broadcast', detect: 'watch the clone counter move' },
    bench: { all_speedup: { r3_t1: 0.9, r3_t8: '1.23x', r5_t1: 1.5, r5_t8: 1.25 }, best_arm_5r_t1: 'reply', best_arm_5r_t8: 'all', beyond_noise: 'only the big differences here', paper: 'veth is not a NIC and the cores are shared; try a VM lab' },
    verifier: { refused: 'the pkt pointer addition', why: 'the byte swap loses the range and clang drops the mask' },
  };
  it('passes right answers and names wrong ones', () => {
    expect(checkLab03(right, ev).items.filter((i) => i.status !== 'ok')).toEqual([]);
    const v = checkLab03({ ...right, bench: { ...right.bench, all_speedup: { ...right.bench.all_speedup, r5_t1: 1.6 } }, lease: { ...right.lease, replied: 5 } }, ev);
    expect(v.items.filter((i) => i.status !== 'ok').map((i) => i.key)).toEqual(['lease.replied', 'lease.fallback', 'bench.all_speedup.r5_t1']);
  });
});

describe('lab 04 facts and check', () => {
  const plan = planFromInputs([{ name: 'lab04', replicas: 7, provider: 'netns', subnet: '10.79.4.0/24' }]);
  const up = (variant: string) => ({ tree: '/t', digest: 'ab', variant, patch: `/p/${variant}/patch.diff` });
  const rec = (seq: number, over: Partial<TrialRecord>): TrialRecord => ({
    seq, replicas: 7, arm: 'broadcast', threads: 1, repeat: 0, nemesis: 'none', status: 'ok', crashed: false, startedAt: '', wallMs: 0, requests: 500, completed: 500, errors: 0, timeouts: 0,
    duration_s: 0.1, throughput_ops: 5000, latency_us: { p50: 200, p90: 0, p95: 0, p99: 0 }, clientExitCode: 0, crashes: [], impl: 'upstream', ...over,
  });
  const seg = (node: string, pid: number) => ({ node, process: 'upstream-replica', pid, signal: 'SIGSEGV', topFrames: ['specpaxos::vr::proto::DoViewChangeMessage_LogEntry::opnum', 'specpaxos::vr::VRReplica::HandleDoViewChange', 'UDPTransport::OnReadable'], dir: `crashes/${node}-${pid}` });
  const crashes = [seg('replica3', 13), seg('replica2', 12)];
  const asIs = rec(0, { status: 'crashed', crashed: true, completed: 0, throughput_ops: null, latency_us: null, crashes, upstream: { ...up('scenario-broadcast'), ports: [10001, 10002, 10003, 10004, 10005, 10006, 10007] } });
  const abort = { node: 'replica1', process: 'upstream-fast', pid: 21, signal: 'SIGABRT', topFrames: ['__pthread_kill_implementation', 'main'], dir: 'crashes/replica1-21' };
  const ev = emptyEvidence({
    plan,
    runs: [
      { id: 'r1', results: results('lab04', [asIs, rec(1, { upstream: up('broadcast') })]), crashes: crashes.map((c) => ({ dir: c.dir, info: c, backtrace: '', bpf: {}, logTail: `x Register (udptransport.cc:381): Listening on UDP port ${10000 + Number(c.node.slice(-1)) + 1}\n`, dmesg: '' })) },
      { id: 'r2', results: results('lab04', [rec(0, { arm: 'all', status: 'crashed', crashes: [abort], upstream: up('all') })]), crashes: [{ dir: abort.dir, info: abort, backtrace: '', bpf: {}, logTail: 'fast: xdp-handler/fast_user.c:320: main: Assertion `bpf_obj_pin(map_prepare_buffer_fd, "/sys/fs/bpf/paxos_prepare_buffer") == 0\' failed.\n', dmesg: '' }] },
    ],
  });

  it('reads the scenario run and the shared-bpffs run', () => {
    const f = lab04Facts(ev);
    expect(f.asIs).toMatchObject({ run: 'r1', committed: 0, crashed: ['replica2', 'replica3'], signals: ['SIGSEGV'], replicaPorts: '10001-10007', generatedCommitted: 500 });
    expect(f.shared).toEqual({ run: 'r2', node: 'replica1', signal: 'SIGABRT', pin: '/sys/fs/bpf/paxos_prepare_buffer' });
  });

  it('passes right answers, names wrong ones, and without runs says what to run', () => {
    const right = {
      as_is: { committed: 0, crashed: 'replica3, replica2', signal: 'segv', function: 'VRReplica::HandleDoViewChange', source_line: 'vr/replica.cc:1158', kernel_port: 12345, replica_ports: '10001..10007', followers_per_prepare: 1, prepareoks_needed: 3, why_three_worked: 'one follower suffices when f is one' },
      generated: { committed: 500, port: 51000 },
      shared_bpffs: { aborted_node: 1, signal: 'SIGABRT', pin: 'paxos_prepare_buffer', why: 'replica0 loader pinned it first in the same bpffs' },
      report: { causes: 'ports never matched so the kernel did nothing; one follower got each prepare; view changes; dangling pointer in HandleDoViewChange crashed the new leaders' },
    };
    const v = checkLab04(right, ev);
    expect(v.items.filter((i) => i.status !== 'ok')).toEqual([]);
    const wrong = checkLab04({ ...right, as_is: { ...right.as_is, crashed: 'replica6', source_line: 'vr/replica.cc:200' }, shared_bpffs: { ...right.shared_bpffs, aborted_node: 'replica0' } }, ev);
    expect(wrong.items.filter((i) => i.status === 'wrong').map((i) => i.key)).toEqual(['as_is.crashed', 'as_is.source_line', 'shared_bpffs.aborted_node']);
    // the scenario's containers count from 1 (its replica4 is the lab's replica3): that answer is wrong, and says so
    const scenarioNames = checkLab04({ ...right, as_is: { ...right.as_is, crashed: 'replica4, replica3' }, shared_bpffs: { ...right.shared_bpffs, aborted_node: 'replica2' } }, ev);
    expect(scenarioNames.items.find((i) => i.key === 'as_is.crashed')).toEqual({
      key: 'as_is.crashed',
      status: 'wrong',
      message: "you wrote replica3, replica4: the scenario's container names, which count from 1 (its replica4 is the lab's replica3); answer with the lab's node names, as `electrode-lab crashes` lists them",
    });
    expect(scenarioNames.items.find((i) => i.key === 'shared_bpffs.aborted_node')?.message).toMatch(/^you wrote replica2: the scenario's container names, which count from 1 \(its replica2 is the lab's replica1\)/);
    const none = checkLab04(right, emptyEvidence({ plan }));
    expect(none.items.find((i) => i.key === 'lab: scenario run')?.status).toBe('missing');
    expect(none.items.find((i) => i.key === 'as_is.crashed')?.message).toMatch(/upstream start --name lab04/);
  });
});

describe('the crash hunt', () => {
  const plan = planFromInputs([{ name: 'lab05', replicas: 5, provider: 'netns', subnet: '10.79.5.0/24' }]);
  it('derives the fault from seed and lab name, every fault is reachable, and seedFor inverts it', () => {
    expect(faultOf('1', 'lab05')).toBe(CRASH_HUNT_FAULTS[fnv1a('1:lab05') % 5]);
    const seen = new Set(Array.from({ length: 60 }, (_, i) => faultOf(String(i + 1), 'lab05')));
    expect(seen.size).toBe(CRASH_HUNT_FAULTS.length);
    for (const f of CRASH_HUNT_FAULTS) expect(faultOf(seedFor(f, 'lab05'), 'lab05')).toBe(f);
  });
  it('lists the faults in the order of native/src/lab_faults.h (the replica derives the same one)', () => {
    const h = readFileSync(join(ROOT, 'native', 'src', 'lab_faults.h'), 'utf8');
    const names = [...h.matchAll(/^\s*EL_LAB_([A-Z_]+)(?: = 0)?,/gm)].map((m) => m[1]!.toLowerCase().replace(/_/g, '-')).filter((n) => n !== 'faults-n');
    expect(names).toEqual([...CRASH_HUNT_FAULTS]);
    expect(readFileSync(join(ROOT, 'native', 'src', 'lab_faults.c'), 'utf8')).toMatch(/0x811c9dc5u[\s\S]*0x01000193u/);
  });
  it('plants the course project\'s peer tables; the other faults keep the lab\'s', () => {
    const stale = plantedPeerTable(plan, 'peer-table').split('\n').filter((l) => l.startsWith('peer '));
    const mac2 = plan.nodes[2]!.mac;
    expect(stale.map((l) => l.split(' ')[3])).toEqual([plan.nodes[0]!.mac, plan.nodes[1]!.mac, mac2, mac2, mac2]);
    expect(plantedPeerTable(plan, 'unknown-port').split('\n').filter((l) => l.startsWith('peer ')).every((l) => l.endsWith(` ${UPSTREAM_PORT}`))).toBe(true);
    expect(plantedPeerTable(plan, 'stale-view')).toBe(plantedPeerTable(plan, 'dangling-pointer'));
    expect(attachOrder(plan, 'shared-pins')).toEqual([4, 3, 2, 1, 0]);
    expect(attachOrder(plan, 'peer-table')).toEqual([0, 1, 2, 3, 4]);
  });
  it('checks a diagnosis against the seed in the record', () => {
    const rec = { ...newRecord('05-crash-hunt', 'lab05'), seed: seedFor('shared-pins', 'lab05') };
    const ev = emptyEvidence({ record: rec, runs: [{ id: 'x', results: results('lab05', []), crashes: [] }] });
    const answers = (fault: string) => ({ diagnosis: { fault, evidence: 'every stats row is the same on all five nodes', fix: 'one pin folder per node from the plan' } });
    expect(verdictOk(checkLab05(answers('shared pins'), ev))).toBe(true);
    expect(checkLab05(answers('stale-view'), ev).items.find((i) => i.key === 'diagnosis.fault')!.status).toBe('wrong');
    expect(checkLab05(answers('a gremlin'), ev).items.find((i) => i.key === 'diagnosis.fault')!.message).toMatch(/is not one of peer-table/);
    expect(checkLab05(answers('shared-pins'), emptyEvidence()).items[0]).toMatchObject({ status: 'missing', message: expect.stringMatching(/lab start 05/) });
    expect(asFault('Unknown Port')).toBe('unknown-port');
  });
});

describe('stats readings', () => {
  it('round-trip; a torn last line is skipped', () => {
    const a = statsReadingLine('lab02', [nodeStats('replica0', { broadcast: { cloned: 5 } })], new Date(0));
    const r = parseStatsReadings(a + a.slice(0, 20));
    expect(r).toHaveLength(1);
    expect(r[0]!.nodes[0]!.broadcast.cloned).toBe(5);
  });
});
