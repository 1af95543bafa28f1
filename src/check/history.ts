/**
 * The operation history our C client writes with `--history FILE`: JSON lines,
 * one per operation, written when the operation completed or was given up.
 *
 *   {"client":17,"key":"k5","op":"put","value":"11.3;","invoke":1234,"complete":1300,"status":"ok","result":5}
 *   {"client":18,"key":"k9","op":"put","value":"12.7;","invoke":2000,"status":"timeout"}
 *
 * Pure: takes the file's text; reading the file is the caller's job.
 */
import { Diagnostic, DiagnosticsError } from '../core/diagnostics.js';
import { Text, linesOf } from '../core/text.js';

export type OpKind = 'put' | 'append' | 'get';
export type OpStatus = 'ok' | 'timeout';

export interface HistoryOp {
  /** One closed-loop client thread; its operations never overlap in time. */
  client: number;
  key: string;
  op: OpKind;
  /** put and append only. */
  value?: string;
  /** Microseconds on one monotonic clock shared by every client of the file. */
  invoke: number;
  /** Absent when status is "timeout". */
  complete?: number;
  /** "timeout" = indeterminate: a write may take effect at any time after `invoke`, or never. */
  status: OpStatus;
  /** The new length (put, append) or the value (get); absent when status is "timeout". */
  result?: number | string;
  /** 1-based line of the file it came from (set by parseHistory; not a field of the file). */
  line?: number;
}

const OPS: readonly OpKind[] = ['put', 'append', 'get'];
const FIELDS = ['client', 'key', 'op', 'value', 'invoke', 'complete', 'status', 'result'] as const;
/** More problems than this are counted, not listed. */
const MAX_LISTED = 20;

/**
 * Parses a history file. Blank lines are skipped. Every problem is collected
 * (each naming the line and the field), then thrown as one DiagnosticsError.
 */
export function parseHistory(text: Text, source = 'history'): HistoryOp[] {
  const diags: Diagnostic[] = [];
  const ops: HistoryOp[] = [];
  let n = 0;
  for (const line of linesOf(text)) {
    n++;
    const raw = line.endsWith('\r') ? line.slice(0, -1) : line;
    if (raw.trim() === '') continue;
    const op = parseLine(raw, n, source, diags);
    if (op) ops.push(op);
  }
  diags.push(...clientOverlaps(ops, source));
  if (diags.length) {
    const listed = diags.slice(0, MAX_LISTED);
    if (diags.length > MAX_LISTED) {
      listed.push({ code: 'HISTORY_MORE', subject: source, message: `and ${diags.length - MAX_LISTED} more problems` });
    }
    throw new DiagnosticsError(listed, 'history');
  }
  return ops;
}

/** One operation as the line the C client writes (no `line`), fields in the file's order. */
export function formatHistoryLine(op: HistoryOp): string {
  const out: Record<string, unknown> = { client: op.client, key: op.key, op: op.op };
  if (op.value !== undefined) out.value = op.value;
  out.invoke = op.invoke;
  if (op.complete !== undefined) out.complete = op.complete;
  out.status = op.status;
  if (op.result !== undefined) out.result = op.result;
  return JSON.stringify(out);
}

function parseLine(raw: string, line: number, source: string, diags: Diagnostic[]): HistoryOp | null {
  const at = (field: string) => `${source}:${line} ${field}`;
  const before = diags.length;
  const bad = (field: string, message: string, hint?: string) =>
    diags.push({ code: 'HISTORY_FIELD', subject: at(field), message, ...(hint ? { hint } : {}) });

  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch (e) {
    diags.push({ code: 'HISTORY_JSON', subject: `${source}:${line}`, message: `not valid JSON (${(e as Error).message})`, hint: 'each line is one JSON object' });
    return null;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    diags.push({ code: 'HISTORY_JSON', subject: `${source}:${line}`, message: 'not a JSON object', hint: 'each line is one JSON object' });
    return null;
  }
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!(FIELDS as readonly string[]).includes(k)) bad(k, 'unknown field', `fields are ${FIELDS.join(', ')}`);
  }

  const client = o.client;
  if (!isCount(client)) bad('client', `must be a non-negative integer, got ${show(client)}`);
  if (typeof o.key !== 'string') bad('key', `must be a string, got ${show(o.key)}`);
  const kind = o.op;
  const opOk = typeof kind === 'string' && (OPS as readonly string[]).includes(kind);
  if (!opOk) bad('op', `unknown op ${show(kind)}`, `expected ${OPS.join(', ')}`);
  if (opOk && kind !== 'get' && typeof o.value !== 'string') bad('value', `${kind} needs a string value, got ${show(o.value)}`);
  if (opOk && kind === 'get' && o.value !== undefined) bad('value', 'get takes no value');
  if (!isCount(o.invoke)) bad('invoke', `must be a non-negative integer (microseconds), got ${show(o.invoke)}`);
  const status = o.status;
  if (status !== 'ok' && status !== 'timeout') bad('status', `must be "ok" or "timeout", got ${show(status)}`);

  if (status === 'ok') {
    if (o.complete === undefined) bad('complete', 'an ok operation needs complete');
    else if (!isCount(o.complete)) bad('complete', `must be a non-negative integer (microseconds), got ${show(o.complete)}`);
    else if (isCount(o.invoke) && o.complete < o.invoke) bad('complete', `${o.complete} is before invoke ${o.invoke}`);
    if (o.result === undefined) bad('result', 'an ok operation needs result');
    else if (opOk && kind === 'get' && typeof o.result !== 'string') bad('result', `get returns the value (a string), got ${show(o.result)}`);
    else if (opOk && kind !== 'get' && !isCount(o.result)) bad('result', `${kind} returns the new length (a non-negative integer), got ${show(o.result)}`);
  } else if (status === 'timeout') {
    const hint = 'a timed-out operation is indeterminate: it has neither';
    if (o.complete !== undefined) bad('complete', 'a timed-out operation has no complete', hint);
    if (o.result !== undefined) bad('result', 'a timed-out operation has no result', hint);
  }
  if (diags.length > before) return null;

  const op: HistoryOp = { client: client as number, key: o.key as string, op: kind as OpKind, invoke: o.invoke as number, status: status as OpStatus, line };
  if (o.value !== undefined) op.value = o.value as string;
  if (o.complete !== undefined) op.complete = o.complete as number;
  if (o.result !== undefined) op.result = o.result as number | string;
  return op;
}

/** A client is one closed-loop thread: each of its operations starts after the previous one ended. */
function clientOverlaps(ops: readonly HistoryOp[], source: string): Diagnostic[] {
  const byClient = new Map<number, HistoryOp[]>();
  for (const op of ops) {
    const list = byClient.get(op.client);
    if (list) list.push(op);
    else byClient.set(op.client, [op]);
  }
  const diags: Diagnostic[] = [];
  for (const [client, list] of byClient) {
    // stable: equal invokes keep file order
    list.sort((a, b) => a.invoke - b.invoke);
    for (let i = 1; i < list.length; i++) {
      const prev = list[i - 1]!;
      const cur = list[i]!;
      // a timed-out op was given up at some time after its invoke; only its start is known
      const prevEnd = prev.complete ?? prev.invoke;
      if (cur.invoke < prevEnd) {
        diags.push({
          code: 'HISTORY_OVERLAP',
          subject: `${source}:${cur.line} invoke`,
          message: `client ${client} starts an operation at ${cur.invoke} before its operation on line ${prev.line} completed (${prevEnd})`,
          hint: 'a client is one closed-loop thread; give each thread its own client id',
        });
      }
    }
  }
  return diags;
}

function isCount(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}

function show(x: unknown): string {
  return x === undefined ? 'nothing' : JSON.stringify(x);
}
