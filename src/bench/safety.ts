/**
 * A trial's safety verdict, from what the trial left in its run folder: the
 * client's operation history (linearizability, src/check/), its log of
 * acknowledged requests, and the committed log each surviving replica wrote
 * as it committed (--dump-log). Pure: texts in, a record out.
 *
 *   lostAcked   acknowledged requests that no surviving replica committed
 *               (checked against the longest surviving log: every other one
 *               must be a prefix of it)
 *   divergence  two surviving logs that disagree at some op
 *   verdict     linearizability of the history (Wing & Gong / Lowe, per key)
 */
import { parseHistory } from '../check/history.js';
import { checkLinearizability, formatVerdict } from '../check/linearizability.js';

export interface SafetyRecord {
  verdict: 'linearizable' | 'not-linearizable' | 'unknown' | 'unchecked';
  /** Operations in the history, keys, timed-out (indeterminate) ones, checker time. */
  ops: number;
  keys: number;
  indeterminate: number;
  elapsedMs: number;
  /** Acknowledged requests missing from the surviving replicas' committed logs. */
  lostAcked: number;
  lostExamples: string[];
  /** How many acknowledged requests were checked, and against how many logs. */
  acked: number;
  logs: number;
  divergence?: string;
  /** The checker's human lines (the smallest bad history) when it is not linearizable. */
  failure?: string;
  /** Why something could not be checked. */
  problem?: string;
}

/** Safe = linearizable (or not checked for a reason given), nothing lost, no divergence. */
export function isSafe(s: SafetyRecord): boolean {
  return s.verdict !== 'not-linearizable' && s.lostAcked === 0 && !s.divergence;
}

interface Committed {
  opnum: number;
  id: string;
}

/** `<opnum> <client> <request> <op> <key>` lines (a partial last line is ignored). */
export function parseCommitted(text: string): Committed[] {
  const out: Committed[] = [];
  const whole = text.slice(0, text.lastIndexOf('\n') + 1);
  for (const line of whole.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const [op, client, request] = line.split(' ');
    if (!op || !client || !request) continue;
    out.push({ opnum: Number(op), id: `${client} ${request}` });
  }
  return out;
}

export function analyzeTrial(input: { history?: string; acks?: string; logs: Map<string, string> }): SafetyRecord {
  const rec: SafetyRecord = { verdict: 'unchecked', ops: 0, keys: 0, indeterminate: 0, elapsedMs: 0, lostAcked: 0, lostExamples: [], acked: 0, logs: input.logs.size };
  const problems: string[] = [];
  // durability and agreement, from the committed logs
  const logs = [...input.logs].map(([node, text]) => ({ node, ops: parseCommitted(text) }));
  const longest = logs.reduce<{ node: string; ops: Committed[] } | undefined>((a, b) => (!a || b.ops.length > a.ops.length ? b : a), undefined);
  if (longest) {
    for (const l of logs) {
      for (let i = 0; i < l.ops.length; i++) {
        const a = l.ops[i]!, b = longest.ops[i]!;
        if (a.opnum !== i + 1 || a.opnum !== b.opnum || a.id !== b.id) {
          rec.divergence = `${l.node} has request ${a.id} at op ${a.opnum}, ${longest.node} has ${b.id} at op ${b.opnum}`;
          break;
        }
      }
      if (rec.divergence) break;
    }
  }
  if (input.acks !== undefined) {
    const acked = input.acks.split('\n').map((l) => l.trim()).filter(Boolean);
    rec.acked = acked.length;
    if (!longest) problems.push('no surviving replica left a committed log');
    else {
      const have = new Set(longest.ops.map((o) => o.id));
      const lost = acked.filter((a) => !have.has(a));
      rec.lostAcked = lost.length;
      rec.lostExamples = lost.slice(0, 5);
    }
  }
  // linearizability of what the clients saw
  if (input.history !== undefined) {
    try {
      const r = checkLinearizability(parseHistory(input.history, 'history'));
      rec.verdict = r.verdict;
      rec.ops = r.ops;
      rec.keys = r.keys;
      rec.indeterminate = r.indeterminate;
      rec.elapsedMs = Math.round(r.elapsedMs);
      if (r.verdict !== 'linearizable') rec.failure = formatVerdict(r);
    } catch (e) {
      problems.push(`history unreadable: ${(e as Error).message.split('\n').slice(0, 3).join(' | ')}`);
    }
  }
  if (problems.length) rec.problem = problems.join('; ');
  return rec;
}

/** The table's word for a group of trials. */
export function safetyCell(records: (SafetyRecord | undefined)[]): string {
  const checked = records.filter((r): r is SafetyRecord => r !== undefined);
  if (!checked.length) return '-';
  const lost = checked.reduce((a, r) => a + r.lostAcked, 0);
  if (checked.some((r) => r.divergence)) return 'DIVERGED';
  if (checked.some((r) => r.verdict === 'not-linearizable')) return lost ? `NOT LIN, LOST ${lost}` : 'NOT LIN';
  if (lost) return `LOST ${lost}`;
  if (checked.some((r) => r.verdict === 'unknown' || r.verdict === 'unchecked')) return '?';
  return 'ok';
}
