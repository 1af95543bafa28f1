/**
 * Lab 06's facts from logs in the replica's own line format: a recovered
 * restart in a normal start, and an --unsafe-no-recovery start whose
 * restarted replica led a view built from empty logs; the lost writes are
 * judged from the lab06-* files against the dumps of the replicas that
 * stopped cleanly only (a killed replica's dump is no survivor's).
 */
import { describe, expect, it } from 'vitest';
import { Evidence } from '../../src/course/evidence.js';
import { checkLab06, lab06Dump, lab06Facts, LAB06_FILES } from '../../src/course/lab06.js';
import { boundaryLine, startHow } from '../../src/course/logs.js';
import { restartLine } from '../../src/core/replicaStatus.js';
import { logTimePrefix } from '../../src/core/logline.js';

const at = (s: number) => new Date(1796646000_000 + s * 1000);
const L = (s: number, node: string, text: string, level = 'info') => `${logTimePrefix(at(s))} ${node} ${level}: ${text}`;
const safeHow = startHow({ fastPaths: 'none', xdp: 'auto', log: 'info' });
const unsafeHow = startHow({ fastPaths: 'none', xdp: 'auto', log: 'info', noRecovery: true });
const exit = (s: number, node: string) => L(s, node, 'stats: rx 170, malformed 0, status normal, view 4, first op 1, last op 2, commit 2');

function replica1(): string {
  return [
    boundaryLine(at(0), safeHow),
    L(0.1, 'replica1', 'recovering: started without state; asking the other 2 replicas (nonce 0x1)'),
    L(0.2, 'replica1', 'view 0 normal (new cluster: every replica started without state), leader 0, last op 0, commit 0'),
    restartLine(at(5), 'replica1', 1),
    L(5.1, 'replica1', 'recovering: started without state; asking the other 2 replicas (nonce 0x2)'),
    L(5.2, 'replica1', 'recovering: 2 replicas are normal; replica 0 leads view 0 (last op 3000): fetching its state'),
    L(5.3, 'replica1', 'snapshot: installed op 3000 (27655 bytes, 896 keys, 2 clients, log to op 3000) from replica 0'),
    L(5.3, 'replica1', 'view 0 normal (recovered from replica 0), leader 0, last op 3000, commit 3000'),
    exit(9, 'replica1'),
    boundaryLine(at(10), unsafeHow),
    L(10.1, 'replica1', '--lab-no-recovery: UNSAFE, lab build only: starting in view 0 normal with empty state, no recovery', 'warn'),
    restartLine(at(13), 'replica1', 1),
    L(13.1, 'replica1', '--lab-no-recovery: UNSAFE, lab build only: starting in view 0 normal with empty state, no recovery', 'warn'),
    L(13.5, 'replica1', 'view change: view 1 -> 4 (new leader 1), last op 0, commit 0'),
    L(13.5, 'replica1', 'view 4: the log of replica 1 wins (normal view 0, last op 0)'),
    L(13.5, 'replica1', 'view 4 normal (elected), leader 1 (me), last op 0, commit 0'),
    exit(15, 'replica1'),
  ].join('\n') + '\n';
}

const logs = (): Record<string, string> => ({
  replica0: [boundaryLine(at(10), unsafeHow), L(10.1, 'replica0', 'replica 0 ready on 10.79.6.10:51000')].join('\n') + '\n', // killed: no exit line
  replica1: replica1(),
  replica2: [boundaryLine(at(10), unsafeHow), L(13.5, 'replica2', 'view 4 normal (StartView), leader 1, last op 0, commit 0'), exit(15, 'replica2')].join('\n') + '\n',
});

/** Two writes acknowledged at ops 1 and 2; the new view committed other requests there. */
const history = ['{"client":7,"key":"k1","op":"put","value":"a","invoke":1,"complete":2,"result":"ok"}'].join('\n');
const files = (): Record<string, string> => ({
  [LAB06_FILES.history]: history,
  [LAB06_FILES.acks]: '7 1 1\n7 2 2\n',
  [lab06Dump('replica0', 0)]: '1 7 1\n2 7 2\n',
  [lab06Dump('replica1', 1)]: '1 9 1\n2 9 2\n',
  [lab06Dump('replica2', 0)]: '1 9 1\n2 9 2\n',
});

const ev = (over: Partial<Evidence> = {}): Evidence => ({ logs: logs(), stats: [], runs: [], files: files(), ...over });

describe('lab 06 facts', () => {
  it('the recovered restart of a normal start: asked, fetched from, snapshot op, view', () => {
    expect(lab06Facts(ev()).recovered).toEqual({ asked: 2, fetchedFrom: 0, snapshotOp: 3000, snapshotFrom: 0, view: 0, recoveredFrom: 0 });
  });
  it('the unsafe start: the view replica1 led, its last op, the winner', () => {
    const u = lab06Facts(ev()).unsafe!;
    expect(u.elected).toEqual({ view: 4, lastOp: 0 });
    expect(u.winner).toBe(1);
  });
  it('lost writes are judged against the cleanly stopped replicas only (replica0 was killed: its dump still has them)', () => {
    const s = lab06Facts(ev()).unsafe!.safety!;
    expect(s.logs).toBe(2);
    expect(s.acked).toBe(2);
    expect(s.lostAcked).toBe(2);
  });
  it('names what is missing: a file, or the stop that writes the committed logs out', () => {
    const f = files();
    delete f[LAB06_FILES.acks];
    expect(lab06Facts(ev({ files: f })).unsafe!.missing).toEqual([LAB06_FILES.acks]);
    const running = logs();
    running.replica1 = running.replica1!.split('\n').slice(0, -2).join('\n') + '\n';
    running.replica2 = running.replica2!.split('\n').slice(0, -2).join('\n') + '\n';
    const u = lab06Facts(ev({ logs: running })).unsafe!;
    expect(u.safety).toBeUndefined();
    expect(u.missing.join(' ')).toMatch(/a clean stop/);
  });
  it('the check: right values pass, a lost count of 0 is wrong, an empty file is all missing', () => {
    const s = lab06Facts(ev()).unsafe!.safety!;
    const right = {
      recovery: { asked: 2, fetched_from: 'replica0', snapshot_op: 3000, view: 0, why_wait: 'it may have acknowledged ops it no longer holds' },
      unsafe: { new_view: 4, new_view_last_op: 0, winner: 'replica1', acknowledged: 2, lost: 2, lost_example: s.lostExamples[0], why_lost: 'replica0 and replica1 acked them, replica1 forgot and replica2 never had them', with_recovery: 'replica1 stays recovering, no view forms, nothing is lost' },
    };
    const ok = checkLab06(right, ev());
    expect(ok.items.filter((i) => i.status !== 'ok')).toEqual([]);
    const bad = checkLab06({ ...right, unsafe: { ...right.unsafe, lost: 0 } }, ev());
    expect(bad.items.filter((i) => i.status !== 'ok').map((i) => [i.key, i.status])).toEqual([['unsafe.lost', 'wrong']]);
    expect(checkLab06({}, ev()).items.filter((i) => i.status === 'missing')).toHaveLength(13);
  });
});
