/**
 * A lab check's verdict: one item per answer (right, wrong, missing) with
 * where to look, plus the facts the lab has not recorded yet (what to run).
 * Pure: a check is a function of the answers and the recorded facts.
 */
import { Answers, answerAt, isBlank } from './answers.js';

export type ItemStatus = 'ok' | 'wrong' | 'missing';

export interface CheckItem {
  /** The answers key (`leader_kill.new_view`), or `lab: <what>` for a fact the lab must record first. */
  key: string;
  status: ItemStatus;
  message: string;
}

export interface Verdict {
  lab: string;
  items: CheckItem[];
}

export function verdictOk(v: Verdict): boolean {
  return v.items.length > 0 && v.items.every((i) => i.status === 'ok');
}

export interface ValueCheck<T> {
  /** The answer as a value of T, or undefined when it is not one. */
  parse: (v: unknown) => T | undefined;
  /** What the lab recorded; undefined when it has not (then `noFact` says what to run). */
  expected: T | undefined;
  /** What to run so the lab records the fact (when expected is undefined). */
  noFact?: string;
  /** Where the student finds the value (a log line, a file, a command). */
  where: string;
  /** What a value of this key looks like, for answers that do not parse. */
  form: string;
  equal?: (answer: T, expected: T) => boolean;
  show?: (x: T) => string;
  /** For a wrong answer that is a known mix-up (another naming, a unit): what it is, said instead of `where`. */
  mixUp?: (answer: T, expected: T) => string | undefined;
}

/** Collects the items of one lab's check in answers-file order. */
export class Checker {
  readonly items: CheckItem[] = [];
  constructor(private readonly answers: Answers) {}

  private push(key: string, status: ItemStatus, message: string): void {
    this.items.push({ key, status, message });
  }

  /** A fact every later answer depends on (e.g. "a leader was killed in this run"). */
  fact(what: string, present: boolean, okMessage: string, howToRecord: string): boolean {
    this.push(`lab: ${what}`, present ? 'ok' : 'missing', present ? okMessage : howToRecord);
    return present;
  }

  value<T>(key: string, c: ValueCheck<T>): void {
    const raw = answerAt(this.answers, key);
    const show = c.show ?? ((x: T) => (Array.isArray(x) ? x.join(' <- ') : String(x)));
    if (isBlank(raw)) {
      this.push(key, 'missing', `no answer yet; ${c.where}`);
      return;
    }
    const got = c.parse(raw);
    if (got === undefined) {
      this.push(key, 'wrong', `'${String(raw).trim()}' is not ${c.form}; ${c.where}`);
      return;
    }
    if (c.expected === undefined) {
      this.push(key, 'missing', `cannot be checked yet: ${c.noFact ?? 'the lab has not recorded it'}`);
      return;
    }
    const eq = c.equal ?? ((a: T, b: T) => (typeof a === 'bigint' || typeof b === 'bigint' ? a === b : JSON.stringify(a) === JSON.stringify(b)));
    if (eq(got, c.expected)) this.push(key, 'ok', show(got));
    else {
      const mix = c.mixUp?.(got, c.expected);
      this.push(key, 'wrong', mix ? `you wrote ${show(got)}: ${mix}` : `you wrote ${show(got)}; ${c.where}`);
    }
  }

  /** A written answer the instructor reads: it only has to be there. */
  text(key: string, where: string, minWords = 3): void {
    const raw = answerAt(this.answers, key);
    if (isBlank(raw)) {
      this.push(key, 'missing', `write it (your instructor reads it); ${where}`);
      return;
    }
    const words = String(Array.isArray(raw) ? raw.join(' ') : raw).trim().split(/\s+/).length;
    if (words < minWords) this.push(key, 'wrong', `${words} word(s) are not an explanation; ${where}`);
    else this.push(key, 'ok', `written (${words} words; your instructor reads it)`);
  }
}

const MARK: Record<ItemStatus, string> = { ok: 'ok     ', wrong: 'WRONG  ', missing: 'MISSING' };

export function verdictCounts(v: Verdict): Record<ItemStatus, number> {
  const c = { ok: 0, wrong: 0, missing: 0 };
  for (const i of v.items) c[i.status]++;
  return c;
}

/** The terminal report: one line per item, the summary first. */
export function formatVerdict(v: Verdict): string {
  const c = verdictCounts(v);
  const head = verdictOk(v)
    ? `lab ${v.lab}: all ${v.items.length} checks right`
    : `lab ${v.lab}: ${c.ok} of ${v.items.length} right, ${c.wrong} wrong, ${c.missing} missing`;
  return [head, ...v.items.map((i) => `  ${MARK[i.status]}  ${i.key}: ${i.message}`)].join('\n');
}
