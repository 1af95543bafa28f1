/**
 * Issue 20's pure parts: a replica's status from its log, the restart's
 * command line, the kill-restart and random nemesis schedules (bounds,
 * determinism, the f-limit), the soak's RSS rule, and the checker's verdict
 * rules (what it could not check; an ack held to the op its reply named).
 */
import { describe, expect, it } from 'vitest';
import { incarnationDumpLog, replicaArgv, restartArgv } from '../../src/core/argv.js';
import { describeReplicaStatus, normalAfter, replicaStatusFromLog, restartLine } from '../../src/core/replicaStatus.js';
import { logTimeFields } from '../../src/core/logline.js';
import { SCHEDULE_KINDS, faultyInterval, killRestartSchedule, maxFaulty, randomSchedule, RECOVERY_ALLOWANCE_MS } from '../../src/bench/nemesisSchedule.js';
import { parseNemesisEntry } from '../../src/bench/nemesis.js';
import { RSS_GROWTH_MIN_KB, parseRssSample, rssSampleScript, rssVerdict } from '../../src/bench/rss.js';
import { NOT_CHECKED_CELL, UNKNOWN_CELL, analyzeTrial, parseAcks, safetyCell, safetyOutcome, survivorDumps } from '../../src/bench/safety.js';
import { benchOptionsFrom } from '../../src/commands/bench.js';
import { renderChart } from '../../src/bench/chart.js';
import { summarize } from '../../src/bench/stats.js';
import { OPTS, rec } from '../helpers/bench.fixtures.js';

/** One replica log line as el_log writes it (epoch, UTC time, tag, level). */
const L = (t: number, text: string, level = 'info') => `${logTimeFields(t)} replica1 ${level}: ${text}\n`;
const LOG =
  `${logTimeFields(1765000000.000001)} electrode-lab start: run 2025-12-06T05:46:40.000Z (fast paths none; xdp auto; log info)\n` +
  L(1765000000.1, 'recovering: started without state; asking the other 2 replicas (nonce 0x77)') +
  L(1765000000.15, 'replica 1 ready on 10.77.0.11:7000 (n=3 f=1 batch=1 mtu=1500)') +
  L(1765000000.2, 'view 0 normal (new cluster: every replica started without state), leader 0, last op 0, commit 0') +
  L(1765000003, 'no word from leader 0 for 400 ms') +
  L(1765000003.0001, 'view change: view 0 -> 1 (new leader 1), last op 120, commit 119');

describe('a replica status from its log', () => {
  it('is the last of view V normal / view change / recovering since the last (re)start line', () => {
    expect(replicaStatusFromLog(LOG.split('\n').slice(0, 2).join('\n'))).toMatchObject({ state: 'recovering' });
    expect(replicaStatusFromLog(LOG.split('\n').slice(0, 4).join('\n'))).toMatchObject({ state: 'normal', view: 0, leader: 0 });
    expect(replicaStatusFromLog(LOG)).toMatchObject({ state: 'view-change', view: 1 });
    const normal1 = `${LOG}${L(1765000003.3, 'view 1 normal (elected), leader 1 (me), last op 120, commit 120')}`;
    expect(replicaStatusFromLog(normal1)).toEqual({ state: 'normal', view: 1, leader: 1, atMs: 1765000003300 });
    // a restart: the old life's lines stop counting, then recovery
    const restarted = `${normal1}${restartLine(new Date(1765000010_000), 'replica1', 1)}\n`;
    expect(restartLine(new Date(1765000010_000), 'replica1', 1)).toBe('1765000010.000000 2025-12-06T05:46:50.000000Z electrode-lab restart: replica1 (incarnation 1)');
    expect(replicaStatusFromLog(restarted)).toEqual({ state: 'starting' });
    // read before the new life wrote a line: nothing after the restart is normal yet, although the old life was
    expect(normalAfter(normal1, 1765000010000)).toBeUndefined();
    const recovering = `${restarted}${L(1765000010.1, 'recovering: started without state; asking the other 2 replicas (nonce 0x1f2e3d4c)')}`;
    expect(replicaStatusFromLog(recovering)).toEqual({ state: 'recovering', atMs: 1765000010100 });
    const stuck = `${recovering}${L(1765000015.1, 'recovering for 5 s and cannot complete: 1 of 2 RecoveryResponses needed. This round: replica 0: no answer', 'error')}`;
    const s = replicaStatusFromLog(stuck);
    expect(s).toEqual({ state: 'recovering', atMs: 1765000010100, reason: 'recovering for 5 s and cannot complete: 1 of 2 RecoveryResponses needed. This round: replica 0: no answer' });
    expect(describeReplicaStatus(s, true)).toBe('recovering: recovering for 5 s and cannot complete: 1 of 2 RecoveryResponses needed. This round: replica 0: no answer');
    const back = `${stuck}${L(1765000016, 'snapshot: installed op 300 (9000 bytes, 40 keys, 8 clients, log to op 310) from replica 1')}${L(1765000016.0002, 'view 1 normal (recovered from replica 1), leader 1, last op 310, commit 300')}`;
    expect(describeReplicaStatus(replicaStatusFromLog(back), true)).toBe('normal in view 1 (leader 1)');
    expect(normalAfter(back, 1765000010000)).toBe(1765000016000.2);
    expect(normalAfter(recovering, 1765000010000)).toBeUndefined();
    // a log from before the UTC field parses too
    expect(replicaStatusFromLog('1765000000.000001 electrode-lab start: run x (y)\n1765000000.200000 replica1 info: view 2 normal (elected), leader 2 (me), last op 0, commit 0\n')).toMatchObject({ state: 'normal', view: 2 });
  });

  it('the lab build without recovery starts normal in view 0: its warning is the line that says so', () => {
    const life = `${restartLine(new Date(1765000010_000), 'replica1', 1)}\n${L(1765000010.05, '--lab-no-recovery: UNSAFE, lab build only: starting in view 0 normal with empty state, no recovery', 'warn')}${L(1765000010.1, 'replica 1 ready on 10.77.0.11:7000 (n=3 f=1 batch=1 mtu=1500)')}`;
    expect(replicaStatusFromLog(life)).toEqual({ state: 'normal', view: 0, leader: 0, atMs: 1765000010050 });
    expect(normalAfter(life, 1765000010000)).toBe(1765000010050);
    // a ready line alone says nothing about the protocol
    expect(replicaStatusFromLog(`${restartLine(new Date(1765000010_000), 'replica1', 1)}\n${L(1765000010.1, 'replica 1 ready on 10.77.0.11:7000 (n=3 f=1 batch=1 mtu=1500)')}`)).toEqual({ state: 'starting' });
  });

  it('says dead when the process is gone, stopped when it exited through its stats line, not started without a record', () => {
    expect(describeReplicaStatus(replicaStatusFromLog(LOG), false)).toBe('dead');
    const exited = `${LOG}${L(1765000004, 'stats: rx 10, malformed 0')}`;
    expect(describeReplicaStatus(replicaStatusFromLog(exited), false)).toBe('stopped');
    expect(describeReplicaStatus(replicaStatusFromLog(''), undefined)).toBe('not started');
    expect(describeReplicaStatus(replicaStatusFromLog(LOG), true)).toBe('view change to view 1');
  });
});

describe('restart command line', () => {
  it('keeps every flag and gives each incarnation its own dump file (never the earlier one)', () => {
    const argv = replicaArgv('/b/replica', { config: '/c', index: 1, dumpLog: '/l/committed.t3.log', fast: { broadcast: true, quorum: false, reply: true }, pinDir: '/p' });
    const r1 = restartArgv(argv, 1);
    expect(r1).toEqual(argv.map((a) => (a === '/l/committed.t3.log' ? '/l/committed.t3.log.1' : a)));
    expect(restartArgv(r1, 2)).toContain('/l/committed.t3.log.2');
    expect(restartArgv(r1, 2)).not.toContain('/l/committed.t3.log.1');
    expect(incarnationDumpLog('/l/d.log', 0)).toBe('/l/d.log');
    expect(restartArgv(['/b/replica', '-c', '/c', '-i', '0'], 1)).toEqual(['/b/replica', '-c', '/c', '-i', '0']);
    expect(replicaArgv('/lab/replica', { config: '/c', index: 0, labNoRecovery: true })).toContain('--lab-no-recovery');
    expect(replicaArgv('/b/replica', { config: '/c', index: 0 })).not.toContain('--lab-no-recovery');
  });
});

describe('nemesis schedules', () => {
  it('parses kill-restart with its target', () => {
    expect(parseNemesisEntry('kill-restart')).toEqual({ name: 'kill-restart', kind: 'kill-restart', target: 'leader' });
    expect(parseNemesisEntry('kill-restart:follower')).toEqual({ name: 'kill-restart:follower', kind: 'kill-restart', target: 'follower' });
    expect(parseNemesisEntry('kill-restart:2')).toMatchObject({ code: 'BENCH_NEMESIS' });
    expect(parseNemesisEntry('random')).toMatchObject({ code: 'BENCH_NEMESIS', hint: expect.stringContaining('--nemesis-schedule random') });
    expect(killRestartSchedule('leader', 1500)).toEqual([{ seq: 0, kind: 'kill-restart', target: 'leader', atMs: 1500, endMs: 1600 }]);
  });

  it('random: the same seed gives the same schedule, another seed another; every fault inside the window, kinds mixed', () => {
    const input = { n: 5, fromMs: 1000, untilMs: 61_000 };
    const a = randomSchedule({ ...input, seed: 7 });
    expect(randomSchedule({ ...input, seed: 7 })).toEqual(a);
    expect(randomSchedule({ ...input, seed: 8 })).not.toEqual(a);
    expect(a.length).toBeGreaterThan(15);
    expect(new Set(a.map((x) => x.kind))).toEqual(new Set(SCHEDULE_KINDS));
    a.forEach((x, i) => {
      expect(x.seq).toBe(i);
      expect(x.atMs).toBeGreaterThan(input.fromMs);
      expect(x.endMs).toBeGreaterThan(x.atMs);
      expect(faultyInterval(x)?.[1] ?? x.endMs).toBeLessThanOrEqual(input.untilMs);
      if (x.kind === 'loss') {
        expect(x.target).toBeUndefined();
        expect(x.percent).toBeGreaterThanOrEqual(2);
        expect(x.percent).toBeLessThanOrEqual(10);
      } else expect(x.target).toBeGreaterThanOrEqual(0);
      if (x.kind === 'kill-restart') expect(x.endMs - x.atMs).toBe(100);
      if (i) expect(x.atMs).toBeGreaterThan(a[i - 1]!.atMs);
    });
    expect(randomSchedule({ ...input, seed: 7, kinds: ['pause'] }).every((x) => x.kind === 'pause')).toBe(true);
  });

  it('random: never more than f replicas faulty at once (a restarted one counts until its recovery allowance ends), one target never hit twice at once', () => {
    for (const n of [3, 5, 7]) {
      const f = (n - 1) / 2;
      let most = 0;
      for (let seed = 1; seed <= 200; seed++) {
        const s = randomSchedule({ seed, n, fromMs: 0, untilMs: 60_000, restartDelayMs: 100 });
        const m = maxFaulty(s);
        expect(m, `n=${n} seed=${seed}`).toBeLessThanOrEqual(f);
        most = Math.max(most, m);
        for (const x of s) {
          const ix = faultyInterval(x);
          if (!ix) continue;
          const clash = s.find((y) => y !== x && y.target === x.target && faultyInterval(y) && faultyInterval(y)![0] < ix[1] && ix[0] < faultyInterval(y)![1]);
          expect(clash, `n=${n} seed=${seed}`).toBeUndefined();
        }
      }
      // the limit is reached, not just respected by doing nothing
      expect(most).toBe(f);
    }
    expect(maxFaulty([{ seq: 0, kind: 'kill-restart', target: 0, atMs: 0, endMs: 100 }, { seq: 1, kind: 'pause', target: 1, atMs: 100 + RECOVERY_ALLOWANCE_MS - 1, endMs: 5000 }])).toBe(2);
  });
});

describe('soak RSS rule', () => {
  const series = (kb: number[]) => ({ node: 'replica0', pid: 9, samples: kb.map((v, i) => [i * 1000, v] as [number, number]) });
  it('grown only when the last third median beats the first third median by the percentage AND the absolute floor', () => {
    expect(rssVerdict(series([10_000, 10_100, 10_050, 10_000, 10_200, 10_100, 10_050, 10_000, 10_100]))).toMatchObject({ grown: false, samples: 9 });
    const g = rssVerdict(series([10_000, 10_000, 10_000, 14_000, 15_000, 16_000, 20_000, 21_000, 22_000]));
    expect(g).toMatchObject({ grown: true, firstKb: 10_000, lastKb: 21_000, growthPercent: 110 });
    // +50 % of a tiny process is below the absolute floor
    expect(rssVerdict(series([2000, 2000, 2000, 2500, 2500, 2500, 3000, 3000, 3000])).grown).toBe(3000 - 2000 > RSS_GROWTH_MIN_KB);
    expect(rssVerdict(series([1, 2, 3]))).toMatchObject({ grown: false, note: expect.stringContaining('not judged') });
  });
  it('samples through one shell line per pid and parses its output', () => {
    expect(rssSampleScript([12, 34])).toContain('/proc/34/status');
    expect([...parseRssSample('12 5000\n34 7000\ngarbage\n')]).toEqual([[12, 5000], [34, 7000]]);
  });
});

const put = (client: number, key: string, value: string, invoke: number, complete: number, result: number) => JSON.stringify({ client, key, op: 'put', value, invoke, complete, status: 'ok', result });
const HISTORY = [put(1, 'k1', '1.1;', 1, 2, 4), put(1, 'k1', '1.2;', 3, 4, 4)].join('\n') + '\n';
const dumpLines = (ops: [number, string][]) => ops.map(([op, id]) => `${op} ${id} put k1`).join('\n') + '\n';

describe('the checker says what it could not check', () => {
  it('no surviving committed log: durability not checked, never ok (the old checker called this ok)', () => {
    const r = analyzeTrial({ history: HISTORY, acks: '1 1 1\n1 2 2\n', dumps: [{ node: 'replica0', incarnation: 0, survivor: false, text: dumpLines([[1, '1 1'], [2, '1 2']]) }] });
    expect(r.verdict).toBe('linearizable');
    expect(r.durability).toBe('not-checked');
    expect(r.notChecked.join()).toMatch(/no surviving replica left a committed log/);
    expect(safetyOutcome(r)).toBe('not-checked');
    expect(safetyCell([r])).toBe(NOT_CHECKED_CELL);
  });

  it('a trial too large for one string (a 10-minute soak: 700 MB of history) is checked from chunks, with the same verdict', () => {
    const chunked = (t: string) => t.split(/(?<=\n)/); // one line per chunk, each ending at its line break
    const dumps = survivorDumps(new Map([['replica0', dumpLines([[1, '1 1'], [2, '1 2']])]]));
    const whole = analyzeTrial({ history: HISTORY, acks: '1 1 1\n1 2 2\n', dumps });
    const parts = analyzeTrial({ history: chunked(HISTORY), acks: chunked('1 1 1\n1 2 2\n'), dumps: dumps.map((d) => ({ ...d, text: chunked(d.text as string) })) });
    expect(whole.verdict).toBe('linearizable');
    expect(whole.durability).toBe('ok');
    expect({ ...parts, elapsedMs: 0 }).toEqual({ ...whole, elapsedMs: 0 });
    // and a lost ack is still found across chunks
    const lost = analyzeTrial({ history: chunked(HISTORY), acks: chunked('1 1 1\n1 2 2\n'), dumps: survivorDumps(new Map([['replica0', chunked(dumpLines([[1, '1 1']]))]])) });
    expect(lost.lostAcked).toBe(1);
  });

  it('no history: linearizability not checked, never ok', () => {
    const r = analyzeTrial({ acks: '1 1 1\n', dumps: survivorDumps(new Map([['replica0', dumpLines([[1, '1 1']])]])) });
    expect(r.durability).toBe('ok');
    expect(r.verdict).toBe('unchecked');
    expect(safetyOutcome(r)).toBe('not-checked');
    expect(safetyCell([r, undefined])).toBe(NOT_CHECKED_CELL);
    expect(safetyOutcome(undefined)).toBe('not-checked');
  });

  it('an acknowledged request must sit at the op its reply named, not anywhere (the old checker found it "somewhere")', () => {
    const dumps = survivorDumps(new Map([['replica0', dumpLines([[1, '1 2'], [2, '1 1']])]]));
    const r = analyzeTrial({ history: HISTORY, acks: '1 1 1\n1 2 2\n', dumps });
    expect(r.lostAcked).toBe(2);
    expect(r.lostExamples[0]).toMatch(/1 1 \(acknowledged at op 1; the survivors have 1 2 there\)/);
    expect(safetyOutcome(r)).toBe('unsafe');
    expect(safetyCell([r])).toBe('LOST 2');
    // past every survivor's last op: lost too
    const short = analyzeTrial({ history: HISTORY, acks: '1 1 1\n1 2 2\n', dumps: survivorDumps(new Map([['replica0', dumpLines([[1, '1 1']])]])) });
    expect(short.lostExamples).toEqual(['1 2 (acknowledged at op 2; the survivors\' logs end at op 1)']);
    // the two-column format of older clients: presence only, and said
    const old = analyzeTrial({ history: HISTORY, acks: '1 1\n1 2\n', dumps });
    expect(old.lostAcked).toBe(0);
    expect(old.notChecked.join()).toMatch(/no op numbers/);
    expect(parseAcks('5 6 7\n8 9\n\n')).toEqual([{ id: '5 6', opnum: 7 }, { id: '8 9' }]);
  });

  it('a recovered replica dump starts after op 1 (the snapshot carried the rest): no divergence, acks below it checked against earlier lives', () => {
    const dumps = [
      { node: 'replica0', incarnation: 0, survivor: true, text: dumpLines([[1, '1 1'], [2, '1 2'], [3, '1 3']]) },
      { node: 'replica1', incarnation: 0, survivor: false, text: dumpLines([[1, '1 1'], [2, '1 2']]) },
      { node: 'replica1', incarnation: 1, survivor: true, text: dumpLines([[3, '1 3']]) },
    ];
    const r = analyzeTrial({ history: HISTORY, acks: '1 1 1\n1 2 2\n1 3 3\n', dumps });
    expect(r.divergence).toBeUndefined();
    expect(r.lostAcked).toBe(0);
    expect(safetyOutcome(r)).toBe('ok');
    expect(safetyCell([r])).toBe('ok');
    // an ack only a snapshot carried, listed in no dump at all: counted as not verified, said
    const lone = analyzeTrial({ history: HISTORY, acks: '1 1 1\n', dumps: [{ node: 'replica1', incarnation: 1, survivor: true, text: dumpLines([[3, '1 3']]) }] });
    expect(lone.unverifiedAcked).toBe(1);
    expect(lone.notChecked.join()).toMatch(/not verified/);
  });

  it('a replica that restarted WITHOUT recovery and formed a new history: divergence against its earlier life, acknowledged writes lost', () => {
    const dumps = [
      { node: 'replica0', incarnation: 0, survivor: false, text: dumpLines([[1, '1 1'], [2, '1 2'], [3, '1 3']]) },
      { node: 'replica1', incarnation: 0, survivor: false, text: dumpLines([[1, '1 1'], [2, '1 2'], [3, '1 3']]) },
      { node: 'replica1', incarnation: 1, survivor: true, text: dumpLines([[1, '1 1'], [2, '2 1']]) },
      { node: 'replica2', incarnation: 0, survivor: true, text: dumpLines([[1, '1 1'], [2, '2 1']]) },
    ];
    const r = analyzeTrial({ history: HISTORY, acks: '1 1 1\n1 2 2\n1 3 3\n', dumps });
    expect(r.divergence).toMatch(/request 2 1 at op 2, replica0 has 1 2/);
    expect(r.lostAcked).toBe(2);
    expect(safetyCell([r])).toBe('DIVERGED, LOST 2');
  });

  it('a dump whose ops do not rise by one is a divergence', () => {
    const r = analyzeTrial({ history: HISTORY, acks: '', dumps: survivorDumps(new Map([['replica0', dumpLines([[1, '1 1'], [3, '1 2']])]])) });
    expect(r.divergence).toMatch(/jumps from op 1 to op 3/);
  });

  it('a jump right after the replica\'s `# snapshot S` line is a catch-up, not a divergence; any other jump still is', () => {
    const d = (text: string) => analyzeTrial({ history: HISTORY, acks: '', dumps: survivorDumps(new Map([['replica2', text]])) });
    const [one, three] = dumpLines([[1, '1 1'], [3, '1 2']]).split('\n');
    // the 10-minute soak: a follower behind every log installed a snapshot of op 2 mid-life
    expect(d(`${one}\n# snapshot 2\n${three}\n`).divergence).toBeUndefined();
    expect(d(`${one}\n# snapshot 1\n${three}\n`).divergence).toMatch(/jumps from op 1 to op 3 \(after its snapshot\)/);
    expect(d(`${one}\n# snapshot 2\n${one}\n`).divergence).toMatch(/jumps from op 2 to op 1/);
  });

  it('unknown and not checked are their own words in the table and the chart, never ok or green', () => {
    const unknown = { ...analyzeTrial({ history: HISTORY, acks: '1 1 1\n', dumps: survivorDumps(new Map([['r', dumpLines([[1, '1 1']])]])) }), verdict: 'unknown' as const };
    expect(safetyCell([unknown])).toBe(UNKNOWN_CELL);
    const results = {
      kind: 'electrode-lab-bench-results' as const, version: 1 as const, id: 'x', lab: 't', createdAt: '', outcome: 'complete' as const, options: OPTS, skipped: [],
      records: [rec({ replicas: 3, arm: 'baseline', threads: 1, repeat: 0, nemesis: 'none', safety: unknown }, 1000), rec({ replicas: 3, arm: 'reply', threads: 1, repeat: 0, nemesis: 'none' }, 1200)],
    };
    const rows = summarize(results);
    expect(rows.map((r) => r.safety).sort()).toEqual([NOT_CHECKED_CELL, UNKNOWN_CELL].sort());
    const svg = renderChart(rows, { title: 't' });
    expect(svg).toMatch(/1 unknown: checker budget/);
    expect(svg).toMatch(/1 NOT CHECKED/);
    expect(svg).not.toContain('#1a7f37" >');
    expect(svg).toMatch(/<title>safety not checked<\/title>/);
    expect(svg).toMatch(/<title>safety unknown<\/title>/);
  });
});

describe('bench flags of issue 20', () => {
  const base = { replicas: [3], arms: ['baseline' as const], threads: [1], repeat: 1, warmup: 1 };
  it('--nemesis-schedule random --seed S is one more nemesis, recorded with its seed; needs a duration', () => {
    const o = benchOptionsFrom({ ...base, nemesis: 'kill-restart:follower', nemesisSchedule: 'random', seed: 7, duration: 60 }, 'lab');
    expect(o.nemesis!.map((n) => n.name)).toEqual(['kill-restart:follower', 'random:7']);
    expect(o.nemesis![1]).toEqual({ name: 'random:7', kind: 'random', seed: 7 });
    expect(() => benchOptionsFrom({ ...base, nemesisSchedule: 'random', requests: 100 }, 'lab')).toThrow(/--duration/);
    expect(() => benchOptionsFrom({ ...base, nemesisSchedule: 'jepsen' }, 'lab')).toThrow(/unknown schedule/);
    expect(() => benchOptionsFrom({ ...base, seed: 3 }, 'lab')).toThrow(/--nemesis-schedule random/);
    // no seed: one is drawn and recorded
    expect(benchOptionsFrom({ ...base, nemesisSchedule: 'random' }, 'lab').nemesis![0]!.seed).toEqual(expect.any(Number));
  });
  it('--soak means 600 s and RSS every second; --unsafe-no-recovery needs the checker', () => {
    const o = benchOptionsFrom({ ...base, soak: true }, 'lab');
    expect(o.duration).toBe(600);
    expect(o.rssSampleMs).toBe(1000);
    expect(benchOptionsFrom({ ...base, soak: true, duration: 30, rssSampleMs: 500 }, 'lab')).toMatchObject({ duration: 30, rssSampleMs: 500 });
    expect(() => benchOptionsFrom({ ...base, rssSampleMs: 10 }, 'lab')).toThrow(/100 ms/);
    expect(benchOptionsFrom({ ...base, unsafeNoRecovery: true }, 'lab').unsafeNoRecovery).toBe(true);
    expect(() => benchOptionsFrom({ ...base, unsafeNoRecovery: true, check: false }, 'lab')).toThrow(/negative control/);
  });
});
