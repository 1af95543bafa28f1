/**
 * The answers file a student fills in (labs/<lab>/answers.yaml): YAML with
 * fixed keys, one per question part. Parsing is strict about the keys (an
 * unknown or misspelt key is reported, never silently ignored) and lenient
 * about how a value is written (`replica1` or `1`, `SIGSEGV` or `segv`).
 */
import { parseDocument } from 'yaml';
import { Diagnostic } from '../core/diagnostics.js';

export type Answers = Record<string, unknown>;

export interface ParsedAnswers {
  answers: Answers;
  diagnostics: Diagnostic[];
}

/** The keys of an answers template (its leaves). */
export function templateKeys(text: string): string[] {
  return leafKeys(parseDocument(text).toJS());
}

/** Dotted key paths of every leaf of a YAML mapping (`a.b.c`). */
export function leafKeys(obj: unknown, prefix = ''): string[] {
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return prefix ? [prefix] : [];
  return Object.entries(obj as Record<string, unknown>).flatMap(([k, v]) =>
    v !== null && typeof v === 'object' && !Array.isArray(v) ? leafKeys(v, `${prefix}${k}.`) : [`${prefix}${k}`],
  );
}

/**
 * Parses an answers file. `known` are the template's keys: other keys are
 * diagnostics (a typo would otherwise look like a missing answer).
 */
export function parseAnswers(text: string, file: string, known: readonly string[]): ParsedAnswers {
  const doc = parseDocument(text, { prettyErrors: true });
  const diagnostics: Diagnostic[] = doc.errors.map((e) => ({ code: 'ANSWERS_YAML', subject: file, message: e.message.split('\n')[0]!, hint: 'fix the YAML (indentation, a missing space after `:`)' }));
  if (diagnostics.length) return { answers: {}, diagnostics };
  const raw = doc.toJS() as unknown;
  if (raw === null || raw === undefined) return { answers: {}, diagnostics };
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    return { answers: {}, diagnostics: [{ code: 'ANSWERS_SHAPE', subject: file, message: 'the answers file must be a mapping of keys to answers', hint: 'start again from the template in the lab folder' }] };
  }
  const set = new Set(known);
  for (const k of leafKeys(raw)) {
    if (!set.has(k)) {
      const near = nearestKey(k, known);
      diagnostics.push({ code: 'ANSWERS_UNKNOWN_KEY', subject: `${file}: ${k}`, message: 'not a key of this lab', hint: near ? `did you mean ${near}?` : `the keys are those of the template (${known.length} of them)` });
    }
  }
  return { answers: raw as Answers, diagnostics };
}

/** Edit distance, for "did you mean". */
function distance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0]!;
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = d[j]!;
      d[j] = Math.min(d[j]! + 1, d[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return d[b.length]!;
}

/** The known key a misspelt one most likely meant: the same last part under another section, or a close spelling. */
function nearestKey(k: string, known: readonly string[]): string | undefined {
  const last = k.split('.').at(-1)!;
  const sameLeaf = known.find((x) => x.split('.').at(-1) === last);
  if (sameLeaf) return sameLeaf;
  const scored = known.map((x) => ({ x, d: distance(k, x) })).sort((a, b) => a.d - b.d);
  return scored[0] && scored[0].d <= Math.max(2, Math.floor(k.length / 5)) ? scored[0].x : undefined;
}

/** The value at a dotted path, undefined when absent. */
export function answerAt(answers: Answers, key: string): unknown {
  let cur: unknown = answers;
  for (const part of key.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/** Nothing written: absent, null, an empty string or list. */
export function isBlank(v: unknown): boolean {
  if (v === undefined || v === null) return true;
  if (typeof v === 'string') return v.trim() === '';
  if (Array.isArray(v)) return v.length === 0 || v.every(isBlank);
  return false;
}

/** A whole number, or undefined when the answer is not one ("3", 3, " 3 "). */
export function asInt(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  if (typeof v === 'string' && /^\s*-?\d+\s*$/.test(v)) return Number(v);
  return undefined;
}

/** A number ("1.23", "1.23x", "+23%" is not one: speedups are ratios). */
export function asNumber(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string') {
    const m = /^\s*(-?\d+(?:\.\d+)?)\s*x?\s*$/i.exec(v);
    if (m) return Number(m[1]);
  }
  return undefined;
}

/** `replica1`, `1`, `r1` -> `replica1`. */
export function asReplica(v: unknown): string | undefined {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return `replica${v}`;
  if (typeof v !== 'string') return undefined;
  const m = /^\s*(?:replica|r)?\s*(\d+)\s*$/i.exec(v);
  return m ? `replica${Number(m[1])}` : undefined;
}

const SIGNALS: Record<string, number> = { SIGSEGV: 11, SIGABRT: 6, SIGBUS: 7, SIGFPE: 8, SIGILL: 4, SIGKILL: 9, SIGTERM: 15 };

/** `SIGSEGV`, `segv`, `11` -> `SIGSEGV`. */
export function asSignal(v: unknown): string | undefined {
  if (typeof v === 'number') return Object.entries(SIGNALS).find(([, n]) => n === v)?.[0];
  if (typeof v !== 'string') return undefined;
  const s = v.trim().toUpperCase();
  if (/^\d+$/.test(s)) return asSignal(Number(s));
  const name = s.startsWith('SIG') ? s : `SIG${s}`;
  return name in SIGNALS ? name : undefined;
}

/** A list written as YAML list or as `a <- b <- c` / `a, b, c`. */
export function asList(v: unknown): string[] {
  if (Array.isArray(v)) return v.filter((x) => !isBlank(x)).map((x) => String(x).trim());
  if (typeof v === 'string') return v.split(/\s*(?:<-|,|\n)\s*|\s+/).map((x) => x.trim()).filter(Boolean);
  if (v === undefined || v === null) return [];
  return [String(v).trim()];
}

/** Lower-case words without punctuation, for choices (`DoViewChange` = `do view change`? no: exact tokens). */
export function asChoice(v: unknown): string | undefined {
  if (typeof v !== 'string' && typeof v !== 'number') return undefined;
  const s = String(v).trim().toLowerCase().replace(/[`'"]/g, '');
  return s || undefined;
}
