/**
 * Whole-system profiles as folded stacks: `perf script` text -> one entry per
 * distinct call stack (root first) with its sample count, the classic folded
 * text (`a;b;c 123`) both ways, and the few questions the bench asks of a
 * profile (top self-time symbols; what share of all samples runs under a
 * given call path). Pure: the caller runs perf and hands over its stdout.
 */

/** One distinct call stack, root first, and its weight (samples, or the sum of periods). */
export interface FoldedStack {
  stack: string[];
  count: number;
}

/** Folded stacks sorted by their `a;b;c` key (code-unit order), each stack once. */
export type Folded = FoldedStack[];

export interface FoldOptions {
  /** Put the process name (`comm`) below the root frame, one tower per process. Default true. */
  comm?: boolean;
  /** Suffix kernel frames (kernel, modules, JIT-ed eBPF programs) with `_[k]`, as stackcollapse-perf does. Default true. */
  kernelSuffix?: boolean;
  /** Weigh each sample as 1 (default) or by its period (ns for cpu-clock; a sample without a period then weighs 0). */
  weight?: 'samples' | 'period';
  /** Keep the idle task's samples (pid 0, `swapper`). Default true: shares are then shares of all CPU time. */
  idle?: boolean;
}

export const KERNEL_SUFFIX = '_[k]';

/** `comm pid[/tid] [cpu] ...` with the cpu field (perf's default with -a); comm is at most 15 characters in the kernel. */
const HEADER_CPU = /^(\S.{0,31}?)\s+(-?\d+)(?:\/(-?\d+))?\s+\[(\d+)\]\s+(.*)$/;
/** `comm pid[/tid] time: ...` when the record had no cpu field. */
const HEADER_TIME = /^(\S.{0,31}?)\s+(-?\d+)(?:\/(-?\d+))?\s+(\d+\.\d+:.*)$/;
const TIME = /^\d+\.\d+:\s*/;
const FRAME = /^([0-9a-fA-F]+)\s+(.*)$/;
const OFFSET = /\+0x[0-9a-fA-F]+$/;
const MODULE_FILE = /\.ko(\.[a-z]+)?$/;
/** Bracketed dso names perf uses for user-space mappings; any other `[...]` is the kernel or a module. */
const USER_PSEUDO_DSOS = new Set(['[unknown]', '[vdso]', '[vsyscall]', '[vvar]', '[heap]', '[stack]', '[anon]', '[uprobes]', '[vectors]']);

interface Header {
  comm: string;
  pid: number;
  period: number | undefined;
  event: string;
}

/** A sample's header line, or undefined for anything else (a `PERF_RECORD_*` line, a warning, garbage). */
function parseHeader(line: string): Header | undefined {
  const m = HEADER_CPU.exec(line) ?? HEADER_TIME.exec(line);
  if (!m) return undefined;
  const rest = m[5] ?? m[4]!;
  const fields = rest.replace(TIME, '').trim().split(/\s+/);
  let period: number | undefined;
  if (fields.length >= 2 && /^\d+$/.test(fields[0]!)) period = Number(fields.shift());
  const event = (fields[0] ?? '').replace(/:$/, '');
  if (event.startsWith('PERF_RECORD_')) return undefined;
  // the pid field is the tid when perf prints only one; 0 is the idle task either way
  return { comm: m[1]!, pid: Number(m[2]), period, event };
}

/** `sym+0xoff (dso)`: the dso is the last balanced parenthesised group (a dso may be `/x (deleted)`, a C++ symbol has parentheses). */
function splitSymDso(rest: string): { sym: string; dso: string } {
  if (!rest.endsWith(')')) return { sym: rest.trim(), dso: '' };
  let depth = 0;
  for (let i = rest.length - 1; i >= 0; i--) {
    const c = rest[i];
    if (c === ')') depth++;
    else if (c === '(' && --depth === 0) {
      if (i > 0 && rest[i - 1] !== ' ' && rest[i - 1] !== '\t') break; // `f(int)` with no dso
      return { sym: rest.slice(0, i).trim(), dso: rest.slice(i + 1, -1) };
    }
  }
  return { sym: rest.trim(), dso: '' };
}

function isKernelFrame(addr: string, dso: string): boolean {
  if (dso === '[kernel.kallsyms]' || dso === '[guest.kernel.kallsyms]') return true;
  if (dso.startsWith('bpf_prog_') || dso === '[bpf_prog]') return true; // JIT-ed eBPF: perf names the dso after the program
  if (MODULE_FILE.test(dso)) return true;
  if (dso.startsWith('[') && dso.endsWith(']')) {
    if (!USER_PSEUDO_DSOS.has(dso)) return true;
    // an unresolved address in the kernel half (but not the legacy vsyscall page) is still the kernel
    return dso === '[unknown]' && addr.length === 16 && /^ffff[89a-f]/i.test(addr) && !/^ffffffffff6/i.test(addr);
  }
  return false;
}

/** `;` separates frames in folded text: keep it out of names. */
const clean = (s: string) => s.replace(/;/g, ':');

function frameName(addr: string, rest: string, kernelSuffix: boolean): string {
  const { sym, dso } = splitSymDso(rest);
  let name = sym.replace(OFFSET, '');
  if (name === '' || name === '[unknown]') {
    if (dso === '' || dso === '[unknown]') name = '[unknown]';
    else if (dso.startsWith('[') && dso.endsWith(']')) name = dso;
    else name = `[${dso.slice(dso.lastIndexOf('/') + 1)}]`;
  }
  name = clean(name);
  return kernelSuffix && isKernelFrame(addr, dso) ? name + KERNEL_SUFFIX : name;
}

const byKey = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Merge stacks with equal frames and sort; the one constructor of a Folded. */
function fromMap(m: Map<string, FoldedStack>): Folded {
  return [...m.entries()].sort((a, b) => byKey(a[0], b[0])).map(([, v]) => v);
}

function add(m: Map<string, FoldedStack>, stack: string[], count: number): void {
  const key = stack.join(';');
  const have = m.get(key);
  if (have) have.count += count;
  else m.set(key, { stack, count });
}

/**
 * Fold `perf script` output (default fields: a header `comm tid [cpu] time: period event:`
 * per sample, then one `\taddr sym+off (dso)` line per frame, leaf first, and a blank
 * line). Frames lose their `+0x..` offset; `[unknown]` frames become `[dso basename]`.
 * Every recognised header counts as a sample, with no frames it folds to `[comm]` alone
 * (or `[unknown]`). Lines it does not recognise are skipped; it never throws.
 */
export function foldPerfScript(text: string, opts: FoldOptions = {}): Folded {
  const withComm = opts.comm ?? true;
  const kernelSuffix = opts.kernelSuffix ?? true;
  const byPeriod = opts.weight === 'period';
  const keepIdle = opts.idle ?? true;
  const out = new Map<string, FoldedStack>();
  let header: Header | undefined;
  let frames: string[] = [];
  const flush = () => {
    if (header && (keepIdle || header.pid !== 0)) {
      const stack = frames.reverse();
      if (withComm) stack.unshift(clean(header.comm));
      if (stack.length === 0) stack.push('[unknown]');
      add(out, stack, byPeriod ? (header.period ?? 0) : 1);
    }
    header = undefined;
    frames = [];
  };
  for (const raw of text.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '') {
      flush();
    } else if (line[0] === ' ' || line[0] === '\t') {
      if (!header) continue;
      const m = FRAME.exec(line.trim());
      if (m) frames.push(frameName(m[1]!, m[2]!, kernelSuffix));
    } else if (line[0] !== '#') {
      flush();
      header = parseHeader(line);
    }
  }
  flush();
  return fromMap(out);
}

/** The classic folded format, one `root;...;leaf count` line per stack, sorted. */
export function foldedText(folded: readonly FoldedStack[]): string {
  const m = new Map<string, FoldedStack>();
  for (const f of folded) if (f.stack.length) add(m, f.stack.map(clean), f.count);
  return fromMap(m)
    .map((f) => `${f.stack.join(';')} ${f.count}\n`)
    .join('');
}

/** Folded text back into stacks (the count follows the last space; bad lines are skipped). */
export function parseFolded(text: string): Folded {
  const m = new Map<string, FoldedStack>();
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    const sp = line.lastIndexOf(' ');
    if (sp <= 0) continue;
    const count = Number(line.slice(sp + 1));
    const key = line.slice(0, sp);
    if (!Number.isFinite(count) || count < 0 || key.trim() === '') continue;
    add(m, key.split(';'), count);
  }
  return fromMap(m);
}

export function totalCount(folded: readonly FoldedStack[]): number {
  let t = 0;
  for (const f of folded) t += f.count;
  return t;
}

export interface SymbolCount {
  symbol: string;
  count: number;
  /** Of all samples, 0-100. */
  percent: number;
}

const pct = (n: number, total: number) => (total > 0 ? (n / total) * 100 : 0);

/**
 * The n heaviest symbols. self (default): by the samples where the symbol is the
 * leaf; otherwise inclusive, each stack counted once per distinct frame in it (then
 * the comm frames of a comm-prefixed profile rank too). Ties go by name.
 */
export function topSymbols(folded: readonly FoldedStack[], n: number, opts: { self?: boolean } = {}): SymbolCount[] {
  const self = opts.self ?? true;
  const total = totalCount(folded);
  const m = new Map<string, number>();
  for (const f of folded) {
    const names = self ? f.stack.slice(-1) : new Set(f.stack);
    for (const s of names) m.set(s, (m.get(s) ?? 0) + f.count);
  }
  return [...m.entries()]
    .sort((a, b) => b[1] - a[1] || byKey(a[0], b[0]))
    .slice(0, Math.max(0, n))
    .map(([symbol, count]) => ({ symbol, count, percent: pct(count, total) }));
}

export interface Share {
  /** Weight of the matching stacks. */
  count: number;
  total: number;
  /** count of total, 0-100 (0 when there are no samples). */
  percent: number;
}

/** A `/g` or `/y` regexp's test() moves lastIndex between calls; match without them. */
const stateless = (r: RegExp) => (r.global || r.sticky ? new RegExp(r.source, r.flags.replace(/[gy]/g, '')) : r);

/**
 * The share of samples whose stack has frames matching the patterns in order from root
 * to leaf, each pattern on its own frame, any frames between: [/bpf_ringbuf_submit/,
 * /native_write_msr/] is "native_write_msr somewhere in a call made under
 * bpf_ringbuf_submit". An empty list matches every sample.
 */
export function stackShare(folded: readonly FoldedStack[], patterns: readonly RegExp[]): Share {
  const res = patterns.map(stateless);
  let count = 0;
  let total = 0;
  for (const f of folded) {
    total += f.count;
    let k = 0;
    for (let i = 0; i < f.stack.length && k < res.length; i++) if (res[k]!.test(f.stack[i]!)) k++;
    if (k === res.length) count += f.count;
  }
  return { count, total, percent: pct(count, total) };
}

/** The share of samples with a frame matching pattern anywhere in the stack. */
export function symbolShare(folded: readonly FoldedStack[], pattern: RegExp): Share {
  return stackShare(folded, [pattern]);
}
