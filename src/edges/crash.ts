/**
 * Crash capture. While a bench runs, the kernel writes cores into the run's
 * folder (core_pattern is set for the run's duration and restored in
 * `finally`, on SIGINT/SIGTERM, and by the next run if we were killed hard:
 * the saved value lives in a lock file). A process that died from a signal
 * gets a folder crashes/<node>-<pid>/ with the core, gdb backtraces of all
 * threads, the tail of its log, the kernel's segfault lines and the eBPF
 * state at that moment.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { LabError } from '../core/diagnostics.js';
import { RunPaths } from './paths.js';
import { Runner } from './runner.js';
import { gdbArgv } from '../core/argv.js';
import { procStartTime, processAlive } from './proc.js';

/** What a crash folder says about one crash (results.json keeps one per crash). */
export interface CrashInfo {
  node: string;
  /** replica or client */
  process: string;
  pid: number;
  /** e.g. SIGSEGV; null when the process vanished without a core telling why. */
  signal: string | null;
  /** Innermost first: function names of the crashing thread, e.g. crash_on_purpose, main. */
  topFrames: string[];
  /** Folder with core, backtrace.txt, log.tail, dmesg.txt, bpf.json; relative to the run root. */
  dir: string;
  /** Core file name inside dir, if one was captured. */
  core?: string;
  note?: string;
  /** Why it died, when a known failure class matched (upstream runs: src/upstream/explain.ts). */
  explanation?: string[];
  /** A course lab holds the explanation back (src/course/holdback.ts): what to do to see it. */
  explanationHeld?: string;
}

export const CORE_PATTERN_FILE = '/proc/sys/kernel/core_pattern';
export const CORE_USES_PID_FILE = '/proc/sys/kernel/core_uses_pid';
/** Linux truncates core_pattern at 127 characters (CORENAME_MAX_SIZE). */
export const CORE_PATTERN_MAX = 127;
export const DEFAULT_LOCK_FILE = '/run/electrode-lab/core-pattern.json';

interface CoreLock {
  pid: number;
  startTime: string;
  pattern: string;
  oldPattern: string;
  oldUsesPid: string;
}

function readTrim(file: string): string {
  return readFileSync(file, 'utf8').replace(/\n$/, '');
}



export interface CorePatternOptions {
  lockFile?: string;
  /** Wait this long for another electrode-lab process holding the core pattern (tests); default 0 = refuse at once. */
  waitMs?: number;
  patternFile?: string;
  usesPidFile?: string;
  log?: (line: string) => void;
}

/** The pattern for a run: cores land in <dir>/core.<comm>.<pid>. */
export function corePatternFor(coresDir: string): string {
  return join(coresDir, 'core.%e.%p');
}

/**
 * Points the kernel's core_pattern at coresDir until restore() (idempotent,
 * synchronous: the bench calls it from its cancellation too) is called.
 */
export class CorePatternGuard {
  private restored = false;
  private constructor(
    private readonly lock: CoreLock,
    private readonly opts: Required<Omit<CorePatternOptions, 'waitMs' | 'log'>> & { log: (l: string) => void },
  ) {}

  get pattern(): string {
    return this.lock.pattern;
  }
  get previous(): string {
    return this.lock.oldPattern;
  }

  static async install(coresDir: string, options: CorePatternOptions = {}): Promise<CorePatternGuard> {
    const opts = {
      lockFile: options.lockFile ?? DEFAULT_LOCK_FILE,
      patternFile: options.patternFile ?? CORE_PATTERN_FILE,
      usesPidFile: options.usesPidFile ?? CORE_USES_PID_FILE,
      log: options.log ?? (() => {}),
    };
    const pattern = corePatternFor(coresDir);
    if (pattern.length > CORE_PATTERN_MAX) {
      throw new LabError(`core pattern '${pattern}' is longer than the kernel's ${CORE_PATTERN_MAX} characters; use a shorter runs folder (ELECTRODE_LAB_RUNS=/var/tmp/el-runs)`, 'CORE_PATTERN_TOO_LONG');
    }
    const deadline = Date.now() + (options.waitMs ?? 0);
    for (;;) {
      const held = CorePatternGuard.heldBy(opts.lockFile, opts.patternFile, opts.usesPidFile, opts.log);
      if (!held) break;
      if (Date.now() >= deadline) {
        throw new LabError(
          `another electrode-lab bench (pid ${held.pid}) is capturing cores into ${dirname(held.pattern)}; wait for it to finish or stop it (kill ${held.pid})`,
          'CORE_PATTERN_BUSY',
        );
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    const lock: CoreLock = {
      pid: process.pid,
      startTime: procStartTime(process.pid) ?? '',
      pattern,
      oldPattern: readTrim(opts.patternFile),
      oldUsesPid: readTrim(opts.usesPidFile),
    };
    mkdirSync(coresDir, { recursive: true });
    mkdirSync(dirname(opts.lockFile), { recursive: true });
    // the lock is written BEFORE the change, so a hard kill between the two still restores
    writeFileSync(opts.lockFile, JSON.stringify(lock) + '\n', { flag: 'wx' });
    const guard = new CorePatternGuard(lock, opts);
    try {
      writeFileSync(opts.patternFile, pattern);
      writeFileSync(opts.usesPidFile, '0');
    } catch (e) {
      guard.restore();
      guard.dispose();
      throw new LabError(`cannot set ${opts.patternFile}: ${(e as Error).message}; run as root`, 'CORE_PATTERN_DENIED');
    }
    opts.log(`core_pattern ${JSON.stringify(lock.oldPattern)} -> ${JSON.stringify(pattern)} (restored at the end)`);
    return guard;
  }

  /** A live holder, or undefined; a lock left by a dead process is undone here. */
  private static heldBy(lockFile: string, patternFile: string, usesPidFile: string, log: (l: string) => void): CoreLock | undefined {
    if (!existsSync(lockFile)) return undefined;
    let lock: CoreLock;
    try {
      lock = JSON.parse(readFileSync(lockFile, 'utf8')) as CoreLock;
    } catch {
      rmSync(lockFile, { force: true });
      return undefined;
    }
    if (lock.pid !== process.pid && procStartTime(lock.pid) === lock.startTime && processAlive(lock.pid)) return lock;
    // the holder died without restoring (SIGKILL): put the host back as it was
    if (readTrim(patternFile) === lock.pattern) {
      writeFileSync(patternFile, lock.oldPattern);
      writeFileSync(usesPidFile, lock.oldUsesPid);
      log(`restored core_pattern ${JSON.stringify(lock.oldPattern)} left changed by a killed run (pid ${lock.pid})`);
    }
    rmSync(lockFile, { force: true });
    return undefined;
  }

  /** Drops the lock file's claim once restored (call after restore() at the end). */
  dispose(): void {
    this.restore();
  }

  /** Idempotent and synchronous (safe in signal handlers and `finally`). */
  restore(): void {
    if (this.restored) return;
    this.restored = true;
    try {
      if (readTrim(this.opts.patternFile) === this.lock.pattern) writeFileSync(this.opts.patternFile, this.lock.oldPattern);
      writeFileSync(this.opts.usesPidFile, this.lock.oldUsesPid);
    } finally {
      rmSync(this.opts.lockFile, { force: true });
    }
    this.opts.log(`core_pattern restored to ${JSON.stringify(this.lock.oldPattern)}`);
  }
}

/** Wraps argv so the process may dump a core of any size. */
export function withCoreDumps(argv: string[]): string[] {
  return ['prlimit', '--core=unlimited', '--', ...argv];
}

export interface CoreFile {
  path: string;
  comm: string;
  pid: number;
}

/** Cores in dir named by corePatternFor: core.<comm>.<pid>. */
export function listCores(dir: string): CoreFile[] {
  if (!existsSync(dir)) return [];
  const out: CoreFile[] = [];
  for (const f of readdirSync(dir)) {
    const m = /^core\.(.+)\.(\d+)$/.exec(f);
    if (m) out.push({ path: join(dir, f), comm: m[1]!, pid: Number(m[2]) });
  }
  return out.sort((a, b) => a.pid - b.pid);
}

/** Waits (condition, not time) until pid is gone and its core, if any, is complete. */
export async function waitForCore(dir: string, pid: number, timeoutMs = 5000): Promise<CoreFile | undefined> {
  const deadline = Date.now() + timeoutMs;
  let lastSize = -1;
  for (;;) {
    const dead = !processAlive(pid);
    const core = listCores(dir).find((c) => c.pid === pid);
    if (dead && core) {
      // the kernel finishes writing before the process becomes a zombie; the size check covers filesystems that lag
      const size = statSync(core.path).size;
      if (size === lastSize && size > 0) return core;
      lastSize = size;
    }
    if (Date.now() > deadline) return dead ? core : undefined;
    await new Promise((r) => setTimeout(r, dead && !core ? 50 : 20));
  }
}

export interface Backtrace {
  signal: string | null;
  /** Function names of the crashing thread, innermost first. */
  topFrames: string[];
  text: string;
}

const FRAME = /^#(\d+)\s+(?:0x[0-9a-fA-F]+ in )?(\S+?)\s*\(/;

/**
 * Parses `gdb -batch -ex bt -ex 'thread apply all bt'` output. gdb first
 * prints the frame it stopped in (a lone #0 line), then `bt` the crashing
 * thread's stack: take the longest #0.. block before the per-thread section.
 */
export function parseBacktrace(text: string): Backtrace {
  const sig = /Program terminated with signal (SIG[A-Z0-9]+)/.exec(text);
  const blocks: string[][] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('Thread ')) break;
    const m = FRAME.exec(line.trim());
    if (!m) continue;
    if (m[1] === '0' || blocks.length === 0) blocks.push([]);
    blocks.at(-1)!.push(m[2]!);
  }
  const best = blocks.reduce<string[]>((a, b) => (b.length > a.length ? b : a), []);
  return { signal: sig ? sig[1]! : null, topFrames: best, text };
}

export async function backtraceOf(runner: Runner, binary: string, core: string): Promise<Backtrace> {
  const r = await runner.run(gdbArgv(binary, core), {
    check: false,
    timeoutMs: 60_000,
  });
  if (r.exitCode === null && !r.stdout) {
    return { signal: null, topFrames: [], text: `gdb did not run (${r.stderr.trim()}); install it: apt-get install gdb\n` };
  }
  const bt = parseBacktrace(r.stdout + '\n' + r.stderr);
  return { ...bt, text: r.stdout + (r.stderr ? `\n--- gdb stderr ---\n${r.stderr}` : '') };
}

export function tailLines(text: string, n: number): string {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines.slice(-n).join('\n') + '\n';
}

/** The kernel's lines about this process (segfault, traps), if dmesg is readable here. */
export async function kernelLines(runner: Runner, pid: number, comm: string): Promise<string> {
  const r = await runner.run(['dmesg', '--notime'], { check: false, timeoutMs: 10_000 });
  if (r.exitCode !== 0) return `dmesg not readable here (${(r.stderr || `exit ${r.exitCode}`).trim()})\n`;
  const needle = `${comm}[${pid}]`;
  const lines = r.stdout.split('\n').filter((l) => l.includes(needle) || (l.includes(`[${pid}]`) && /segfault|trap|general protection/.test(l)));
  return lines.length ? lines.join('\n') + '\n' : `no kernel lines mention ${needle} (kernel.print-fatal-signals / show_unhandled_signals may be off)\n`;
}

export interface CrashCaptureInput {
  run: RunPaths;
  runner: Runner;
  node: string;
  process: string;
  pid: number;
  binary: string;
  /** The process log (its stdout/stderr), for the last 200 lines. */
  logFile?: string;
  /** Signal known from the wait status (client exec), else read from the core. */
  signal?: string | null;
  core?: CoreFile;
  /** eBPF state at that moment (attached programs, el_ctrl, el_config, stats), if any. */
  bpfState?: () => Promise<unknown>;
  /** gdb's output when it ran where the binary lives (inside a VM); else gdb runs here on `core`. */
  backtraceText?: string;
  /** Why there is no core although the process crashed (e.g. left in the VM: too large to copy). */
  coreNote?: string;
  /** The node's state (Provider.collect) into the folder it is given. */
  collect?: (dir: string) => Promise<void>;
}

/** Collects one crash folder and returns what results.json records about it. */
export async function captureCrash(input: CrashCaptureInput): Promise<CrashInfo> {
  const dir = input.run.crashDir(input.node, input.pid);
  mkdirSync(dir, { recursive: true });
  const info: CrashInfo = { node: input.node, process: input.process, pid: input.pid, signal: input.signal ?? null, topFrames: [], dir: relative(input.run.root, dir) };
  const notes: string[] = [];
  if (input.core) {
    const dest = join(dir, 'core');
    renameSync(input.core.path, dest);
    info.core = 'core';
    const bt = input.backtraceText !== undefined ? { ...parseBacktrace(input.backtraceText), text: input.backtraceText } : await backtraceOf(input.runner, input.binary, dest);
    writeFileSync(join(dir, 'backtrace.txt'), bt.text);
    info.topFrames = bt.topFrames;
    info.signal = bt.signal ?? info.signal;
  } else if (input.backtraceText !== undefined) {
    const bt = parseBacktrace(input.backtraceText);
    writeFileSync(join(dir, 'backtrace.txt'), input.backtraceText);
    info.topFrames = bt.topFrames;
    info.signal = bt.signal ?? info.signal;
    notes.push(input.coreNote ?? 'the core stayed where it was written');
  } else {
    notes.push('no core file was written (the process may have been killed by SIGKILL, or core dumps were limited)');
    writeFileSync(join(dir, 'backtrace.txt'), 'no core file: no backtrace\n');
  }
  if (input.logFile && existsSync(input.logFile)) {
    writeFileSync(join(dir, 'log.tail'), tailLines(readFileSync(input.logFile, 'utf8'), 200));
  } else {
    notes.push('no log file');
  }
  writeFileSync(join(dir, 'dmesg.txt'), await kernelLines(input.runner, input.pid, basename(input.binary).slice(0, 15)));
  if (input.bpfState) {
    try {
      writeFileSync(join(dir, 'bpf.json'), JSON.stringify(await input.bpfState(), null, 2) + '\n');
    } catch (e) {
      writeFileSync(join(dir, 'bpf.json'), JSON.stringify({ error: (e as Error).message }) + '\n');
    }
  } else {
    writeFileSync(join(dir, 'bpf.json'), JSON.stringify({ attached: false, note: 'no eBPF fast paths in this arm' }) + '\n');
  }
  if (input.collect) {
    await input.collect(join(dir, 'node')).catch((e: Error) => notes.push(`node state not collected: ${e.message.split('\n')[0]}`));
  }
  if (notes.length) info.note = notes.join('; ');
  writeFileSync(join(dir, 'crash.json'), JSON.stringify({ ...info, binary: input.binary, logFile: input.logFile }, null, 2) + '\n');
  return info;
}

/** Reads every crashes/<node>-<pid>/crash.json of a run (for `electrode-lab crashes`). */
export function listCrashes(run: RunPaths): CrashInfo[] {
  if (!existsSync(run.crashesDir)) return [];
  const out: CrashInfo[] = [];
  for (const d of readdirSync(run.crashesDir).sort()) {
    const f = join(run.crashesDir, d, 'crash.json');
    if (!existsSync(f)) continue;
    try {
      out.push(JSON.parse(readFileSync(f, 'utf8')) as CrashInfo);
    } catch {
      out.push({ node: d, process: '?', pid: 0, signal: null, topFrames: [], dir: relative(run.root, dirname(f)), note: 'crash.json unreadable' });
    }
  }
  return out;
}
