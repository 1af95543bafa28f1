/**
 * The patch's anchored editing: every replacement in a file goes through one
 * FileText, which either finds its anchor as often as the rule says (or sees
 * the edit already made) or records the missing anchor with a hint; the
 * Patcher collects the diagnostics and the list of edits made. Pure.
 */
import { Diagnostic } from '../core/diagnostics.js';
import { MissingAnchor, PatchEdit, UpstreamFile } from './patchModel.js';

export const ANCHOR_HINT = 'the tree differs from upstream Electrode (0999991) here; edit this spot by hand, or restore the upstream file';

export class Patcher {
  readonly diagnostics: Diagnostic[] = [];
  readonly missing: MissingAnchor[] = [];
  readonly edits: PatchEdit[] = [];

  anchorMissing(file: UpstreamFile, anchor: string, message: string): void {
    this.diagnostics.push({ code: 'UPSTREAM_ANCHOR_MISSING', subject: file, message: `expected ${anchor}: ${message}`, hint: ANCHOR_HINT });
    this.missing.push({ file, anchor });
  }

  lab(code: string, subject: string, message: string, hint?: string): void {
    this.diagnostics.push({ code, subject, message, hint });
  }

  note(file: UpstreamFile, what: string): void {
    this.edits.push({ file, what });
  }
}

export interface Rule {
  anchor: string;
  why: string;
  /** Exact number of matches wanted; 'some' = at least one. */
  count: number | 'some';
  /** When nothing matches and this does, the edit is already in the file: fine. */
  done?: RegExp;
  what: string;
}

/** One file's text under edit; every replacement goes through `edit`. */
export class FileText {
  constructor(private readonly p: Patcher, readonly file: UpstreamFile, public text: string) {}

  /** Replace every match of `re` (global) with `fn(match)`, or report the missing anchor. Returns the matches. */
  edit(re: RegExp, rule: Rule, fn: (m: RegExpExecArray) => string): RegExpExecArray[] {
    const matches = [...this.text.matchAll(re)] as RegExpExecArray[];
    if (matches.length === 0) {
      if (rule.done && rule.done.test(this.text)) return [];
      this.p.anchorMissing(this.file, rule.anchor, `${rule.why} (not found)`);
      return [];
    }
    if (rule.count !== 'some' && matches.length !== rule.count) {
      this.p.anchorMissing(this.file, rule.anchor, `${rule.why} (wanted ${rule.count}, found ${matches.length})`);
      return [];
    }
    let out = '';
    let last = 0;
    for (const m of matches) {
      out += this.text.slice(last, m.index) + fn(m);
      last = m.index + m[0].length;
    }
    this.text = out + this.text.slice(last);
    this.p.note(this.file, rule.what);
    return matches;
  }

  /** Leading whitespace of the line that contains offset `at`. */
  indentAt(at: number): string {
    const start = this.text.lastIndexOf('\n', at - 1) + 1;
    return /^[ \t]*/.exec(this.text.slice(start))?.[0] ?? '';
  }
}

export const reEscape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Split a C initializer body on top-level commas. */
export function topLevelItems(body: string): string[] {
  const items: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of body) {
    if (ch === '(' || ch === '[' || ch === '{') depth++;
    if (ch === ')' || ch === ']' || ch === '}') depth--;
    if (ch === ',' && depth === 0) {
      items.push(cur);
      cur = '';
    } else cur += ch;
  }
  items.push(cur);
  return items.map((s) => s.trim()).filter((s) => s !== '');
}
