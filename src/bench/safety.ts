/**
 * A trial's safety verdict, from what the trial left in its run folder: the
 * client's operation history (linearizability, src/check/), its log of
 * acknowledged requests (`<client> <request> <opnum>`: the op number each
 * reply named), and the committed logs every replica incarnation wrote as it
 * committed (--dump-log; a restarted replica writes a new file, and one that
 * recovered from a snapshot starts after op 1). Pure: texts in, a record out.
 *
 *   divergence   two dumps (any node, any incarnation, killed or not) with
 *                different requests at one op, or a dump whose ops do not
 *                rise by one
 *   lostAcked    acknowledged requests the survivors do not hold at the op
 *                number their reply named (another request there, or past
 *                every survivor's last op)
 *   verdict      linearizability of the history (Wing & Gong / Lowe, per key)
 *   notChecked   what could not be checked, each said: no history, no ack
 *                log, no surviving committed log, acks only a snapshot
 *                carried. A trial with any of the first three is "not
 *                checked", never "ok" (safetyOutcome).
 */
import { parseHistory } from '../check/history.js';
import { Text, linesOf } from '../core/text.js';
import { checkLinearizability, formatVerdict } from '../check/linearizability.js';

export interface SafetyRecord {
  verdict: 'linearizable' | 'not-linearizable' | 'unknown' | 'unchecked';
  /** Operations in the history, keys, timed-out (indeterminate) ones, checker time. */
  ops: number;
  keys: number;
  indeterminate: number;
  elapsedMs: number;
  /** Durability of acknowledged requests: not-checked without an ack log or a surviving committed log. */
  durability: 'ok' | 'lost' | 'not-checked';
  /** Acknowledged requests the survivors do not hold at their reply's op number. */
  lostAcked: number;
  lostExamples: string[];
  /** How many acknowledged requests were checked, and against how many dumps (survivors'). */
  acked: number;
  logs: number;
  /** Acknowledged ops below every survivor's first dumped op (a snapshot carried them) that no dump lists: not verifiable. */
  unverifiedAcked?: number;
  divergence?: string;
  /** The checker's human lines (the smallest bad history) when it is not linearizable. */
  failure?: string;
  /** What could not be checked, one reason each. */
  notChecked: string[];
  /** Why something could not be read. */
  problem?: string;
}

/** One --dump-log file of one replica incarnation. */
export interface DumpInput {
  node: string;
  /** 0 = the first start, 1 = the first restart, ... */
  incarnation: number;
  /** Still running at the end of the trial (its dump is complete and its state is the lab's). */
  survivor: boolean;
  text: Text;
}

/** Unsafe = a history that is not linearizable, a lost acknowledged request, or diverged logs. */
export function isSafe(s: SafetyRecord): boolean {
  return s.verdict !== 'not-linearizable' && s.lostAcked === 0 && !s.divergence;
}

export type SafetyOutcome = 'unsafe' | 'not-checked' | 'unknown' | 'ok';

/** The one-word verdict: ok only when linearizability AND durability were both checked and passed. */
export function safetyOutcome(s: SafetyRecord | undefined): SafetyOutcome {
  if (!s) return 'not-checked';
  if (!isSafe(s)) return 'unsafe';
  if (s.verdict === 'unchecked' || s.durability === 'not-checked') return 'not-checked';
  if (s.verdict === 'unknown') return 'unknown';
  return 'ok';
}

interface Committed {
  opnum: number;
  id: string;
  /** A `# snapshot S` line came just before: this op follows op S, whatever was listed before it. */
  afterSnapshot?: number;
}

/**
 * `<opnum> <client> <request> <op> <key>` lines (a partial last line is
 * ignored), and `# snapshot S` lines: the replica installed a snapshot of op
 * S (a follower behind every log catches up that way mid-life).
 */
export function parseCommitted(text: Text): Committed[] {
  const out: Committed[] = [];
  let snapshot: number | undefined;
  for (const line of linesOf(text, { completeOnly: true })) {
    const m = /^# snapshot (\d+)$/.exec(line);
    if (m) snapshot = Number(m[1]);
    if (!line || line.startsWith('#')) continue;
    const [op, client, request] = line.split(' ');
    if (!op || !client || !request) continue;
    out.push({ opnum: Number(op), id: `${client} ${request}`, ...(snapshot !== undefined ? { afterSnapshot: snapshot } : {}) });
    snapshot = undefined;
  }
  return out;
}

export interface Ack {
  id: string;
  /** The op number the reply named; absent in an ack log of the two-column format. */
  opnum?: number;
}

/** `<client> <request> [<opnum>]` lines of the client's --ack-log. */
export function parseAcks(text: Text): Ack[] {
  const out: Ack[] = [];
  for (const line of linesOf(text)) {
    const [client, request, op] = line.trim().split(/\s+/);
    if (!client || !request) continue;
    out.push({ id: `${client} ${request}`, ...(op !== undefined && /^\d+$/.test(op) ? { opnum: Number(op) } : {}) });
  }
  return out;
}

const label = (d: Pick<DumpInput, 'node' | 'incarnation'>) => (d.incarnation ? `${d.node} (restart ${d.incarnation})` : d.node);

/** The first disagreement among dumps, or a dump whose ops do not rise by one. */
function divergenceOf(dumps: { d: DumpInput; ops: Committed[] }[]): string | undefined {
  const at = new Map<number, { id: string; who: string }>();
  for (const { d, ops } of dumps) {
    for (let i = 0; i < ops.length; i++) {
      const o = ops[i]!;
      // after a snapshot of op S the next op is S+1; otherwise each op follows the one before
      const follows = o.afterSnapshot !== undefined ? o.afterSnapshot : i > 0 ? ops[i - 1]!.opnum : undefined;
      if (follows !== undefined && o.opnum !== follows + 1) return `${label(d)}'s committed log jumps from op ${follows} to op ${o.opnum}${o.afterSnapshot !== undefined ? ' (after its snapshot)' : ''}`;
      if (i === 0 && !(o.opnum >= 1)) return `${label(d)}'s committed log starts at op ${o.opnum}`;
      const seen = at.get(o.opnum);
      if (!seen) at.set(o.opnum, { id: o.id, who: label(d) });
      else if (seen.id !== o.id) return `${label(d)} has request ${o.id} at op ${o.opnum}, ${seen.who} has ${seen.id}`;
    }
  }
  return undefined;
}

/** Survivors' committed logs from a map of texts (check-history --committed: every file is a survivor's). */
export function survivorDumps(logs: Map<string, Text>): DumpInput[] {
  return [...logs].map(([node, text]) => ({ node, incarnation: 0, survivor: true, text }));
}

export function analyzeTrial(input: { history?: Text; acks?: Text; dumps: DumpInput[] }): SafetyRecord {
  const survivors = input.dumps.filter((d) => d.survivor);
  const rec: SafetyRecord = {
    verdict: 'unchecked', ops: 0, keys: 0, indeterminate: 0, elapsedMs: 0, durability: 'not-checked', lostAcked: 0, lostExamples: [], acked: 0, logs: survivors.length, notChecked: [],
  };
  const problems: string[] = [];
  const parsed = input.dumps.map((d) => ({ d, ops: parseCommitted(d.text) }));
  const divergence = divergenceOf(parsed);
  if (divergence) rec.divergence = divergence;
  // what the lab still holds: the survivors' dumps, op by op
  const held = new Map<number, string>();
  let last = 0;
  for (const p of parsed) if (p.d.survivor) for (const o of p.ops) {
    if (!held.has(o.opnum)) held.set(o.opnum, o.id);
    last = Math.max(last, o.opnum);
  }
  // what any incarnation committed (killed ones and earlier lives included)
  const any = new Map<number, string>();
  for (const p of parsed) for (const o of p.ops) if (!any.has(o.opnum)) any.set(o.opnum, o.id);
  if (input.acks === undefined) rec.notChecked.push('no ack log: durability of acknowledged requests not checked');
  else if (!held.size) {
    rec.acked = parseAcks(input.acks).length;
    rec.notChecked.push(survivors.length ? 'the surviving replicas committed nothing: durability not checked' : 'no surviving replica left a committed log: durability not checked');
  } else {
    const acks = parseAcks(input.acks);
    rec.acked = acks.length;
    const lost: string[] = [];
    let unverified = 0;
    const heldIds = new Set(held.values());
    for (const a of acks) {
      if (a.opnum === undefined) {
        if (!heldIds.has(a.id)) lost.push(a.id);
        continue;
      }
      const there = held.get(a.opnum);
      if (there !== undefined) {
        if (there !== a.id) lost.push(`${a.id} (acknowledged at op ${a.opnum}; the survivors have ${there} there)`);
      } else if (a.opnum > last) {
        lost.push(`${a.id} (acknowledged at op ${a.opnum}; the survivors' logs end at op ${last})`);
      } else if (any.get(a.opnum) === a.id) {
        // an earlier incarnation or a killed replica committed it there; the survivors got it in a snapshot (their dumps start later)
      } else if (any.has(a.opnum)) {
        lost.push(`${a.id} (acknowledged at op ${a.opnum}; a replica committed ${any.get(a.opnum)} there)`);
      } else unverified++;
    }
    if (acks.some((a) => a.opnum === undefined)) rec.notChecked.push('the ack log has no op numbers: acknowledged requests were checked for presence only, not at their op');
    if (unverified) {
      rec.unverifiedAcked = unverified;
      rec.notChecked.push(`${unverified} acknowledged request(s) sit below every survivor's first dumped op (a snapshot carried them) and no dump lists them: not verified`);
    }
    rec.lostAcked = lost.length;
    rec.lostExamples = lost.slice(0, 5);
    rec.durability = lost.length ? 'lost' : 'ok';
  }
  // linearizability of what the clients saw
  if (input.history === undefined) rec.notChecked.push('no history: linearizability not checked');
  else {
    try {
      const r = checkLinearizability(parseHistory(input.history, 'history'));
      rec.verdict = r.verdict;
      rec.ops = r.ops;
      rec.keys = r.keys;
      rec.indeterminate = r.indeterminate;
      rec.elapsedMs = Math.round(r.elapsedMs);
      if (r.verdict !== 'linearizable') rec.failure = formatVerdict(r);
      if (r.verdict === 'unknown') rec.notChecked.push("the checker's budget ran out on some key: linearizability unknown");
    } catch (e) {
      problems.push(`history unreadable: ${(e as Error).message.split('\n').slice(0, 3).join(' | ')}`);
      rec.notChecked.push('history unreadable: linearizability not checked');
    }
  }
  if (problems.length) rec.problem = problems.join('; ');
  return rec;
}

/** Table words that mean "neither proven safe nor shown unsafe". */
export const NOT_CHECKED_CELL = 'not checked';
export const UNKNOWN_CELL = 'unknown';

/** The table's word for a group of trials (a trial without a record counts as not checked). */
export function safetyCell(records: (SafetyRecord | undefined)[]): string {
  if (!records.length) return '-';
  const checked = records.filter((r): r is SafetyRecord => r !== undefined);
  const lost = checked.reduce((a, r) => a + r.lostAcked, 0);
  if (checked.some((r) => r.divergence)) return lost ? `DIVERGED, LOST ${lost}` : 'DIVERGED';
  if (checked.some((r) => r.verdict === 'not-linearizable')) return lost ? `NOT LIN, LOST ${lost}` : 'NOT LIN';
  if (lost) return `LOST ${lost}`;
  const outcomes = records.map(safetyOutcome);
  if (outcomes.includes('not-checked')) return NOT_CHECKED_CELL;
  if (outcomes.includes('unknown')) return UNKNOWN_CELL;
  return 'ok';
}

/** A cell that shows a violation (not ok, not unknown, not unchecked). */
export function isUnsafeCell(cell: string): boolean {
  return cell !== 'ok' && cell !== '-' && cell !== '' && cell !== NOT_CHECKED_CELL && cell !== UNKNOWN_CELL;
}
