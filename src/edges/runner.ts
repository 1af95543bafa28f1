/**
 * The one door for side effects: every external command goes through a
 * Runner and comes back in one result shape. `DryRunRunner` prints commands
 * instead of running them (--dry-run); `RecordingRunner` records them for
 * provider tests.
 */
import { execa } from 'execa';
import { spawn } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';

export interface RunResult {
  argv: string[];
  exitCode: number | null;
  signal: string | null;
  durationMs: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  input?: string;
  timeoutMs?: number;
  /** Non-zero exit is returned instead of thrown (the return type does not change). */
  check?: boolean;
  /** 'inherit' passes our stdin/stdout/stderr through (e.g. `electrode-lab exec`); stdout/stderr then come back empty. */
  stdio?: 'pipe' | 'inherit';
  /** stdout is bulk data (e.g. a core in base64): providers keep it out of their logs. */
  bulkStdout?: boolean;
  /** Called with stdout as it arrives (progress, deadlines on what a long step prints). */
  onStdout?: (chunk: string) => void;
  /** Ends the command (SIGTERM, then SIGKILL) when aborted; the result then has its signal. */
  signal?: AbortSignal;
}

export interface SpawnOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  /** stdout and stderr of the process are appended to this file. */
  logFile: string;
}

export interface Runner {
  readonly dryRun: boolean;
  run(argv: string[], opts?: RunOptions): Promise<RunResult>;
  /** Starts a long-running process detached from us; returns its PID. */
  spawnDetached(argv: string[], opts: SpawnOptions): Promise<number>;
}

export class CommandError extends Error {
  constructor(public readonly result: RunResult) {
    const how = result.signal ? `was killed by ${result.signal}` : `exited with ${result.exitCode}`;
    const tail = (result.stderr || result.stdout).trim().split('\n').slice(-5).join('\n');
    super(`\`${result.argv.join(' ')}\` ${how}${tail ? `:\n${tail}` : ''}`);
    this.name = 'CommandError';
  }
}

export function shellQuote(argv: string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

export class ExecaRunner implements Runner {
  readonly dryRun = false;
  /** Optional observer (e.g. a run's commands.log). */
  constructor(private readonly onResult?: (r: RunResult) => void) {}

  async run(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
    const [file, ...args] = argv;
    if (!file) throw new Error('empty argv');
    const t0 = performance.now();
    const child = execa(file, args, {
      cwd: opts.cwd,
      env: opts.env,
      input: opts.input,
      timeout: opts.timeoutMs,
      reject: false,
      stripFinalNewline: false,
      ...(opts.signal ? { cancelSignal: opts.signal, forceKillAfterDelay: 2000 } : {}),
      ...(opts.stdio === 'inherit' ? { stdio: 'inherit' as const } : { stdin: opts.input === undefined ? ('ignore' as const) : undefined }),
    });
    if (opts.onStdout && child.stdout) {
      const cb = opts.onStdout;
      child.stdout.on('data', (b: Buffer) => cb(b.toString()));
    }
    const r = await child;
    const result: RunResult = {
      argv,
      exitCode: r.exitCode ?? null,
      signal: r.signal ? String(r.signal) : null,
      durationMs: Math.round(performance.now() - t0),
      stdout: String(r.stdout ?? ''),
      stderr: String(r.stderr ?? (r.failed && r.exitCode === undefined ? r.message : '')),
    };
    if (r.exitCode === undefined && !r.signal && r.failed) {
      // could not start at all (ENOENT...): make the message useful
      result.stderr = r.message ?? 'could not start';
    }
    this.onResult?.(result);
    if (opts.check !== false && (result.exitCode !== 0 || result.signal)) throw new CommandError(result);
    return result;
  }

  async spawnDetached(argv: string[], opts: SpawnOptions): Promise<number> {
    const [file, ...args] = argv;
    if (!file) throw new Error('empty argv');
    // node's spawn, not execa: the child must outlive us, writing straight to
    // the log file's descriptor rather than through a pipe we own.
    const fd = openSync(opts.logFile, 'a');
    try {
      const child = spawn(file, args, { cwd: opts.cwd, env: opts.env as NodeJS.ProcessEnv | undefined, detached: true, stdio: ['ignore', fd, fd] });
      const pid = await new Promise<number>((ok, fail) => {
        child.once('error', (e) => fail(new Error(`could not start ${file}: ${e.message}`)));
        child.once('spawn', () => ok(child.pid!));
      });
      child.unref();
      return pid;
    } finally {
      closeSync(fd);
    }
  }
}

/** Prints each command instead of running it; every command "succeeds" with empty output. */
export class DryRunRunner implements Runner {
  readonly dryRun = true;
  constructor(private readonly print: (line: string) => void = (l) => process.stdout.write(l + '\n')) {}
  async run(argv: string[]): Promise<RunResult> {
    this.print(shellQuote(argv));
    return { argv, exitCode: 0, signal: null, durationMs: 0, stdout: '', stderr: '' };
  }
  async spawnDetached(argv: string[], opts: SpawnOptions): Promise<number> {
    this.print(`${shellQuote(argv)} >>${opts.logFile} 2>&1 &`);
    return 0;
  }
}

/** For provider tests: records every argv; answers from a responder (default: success, no output). */
export class RecordingRunner implements Runner {
  readonly dryRun = false;
  readonly calls: string[][] = [];
  constructor(private readonly respond: (argv: string[]) => Partial<RunResult> = () => ({})) {}
  async run(argv: string[], opts: RunOptions = {}): Promise<RunResult> {
    this.calls.push(argv);
    const result: RunResult = { argv, exitCode: 0, signal: null, durationMs: 0, stdout: '', stderr: '', ...this.respond(argv) };
    if (opts.check !== false && result.exitCode !== 0) throw new CommandError(result);
    return result;
  }
  async spawnDetached(argv: string[]): Promise<number> {
    this.calls.push(argv);
    return 4242;
  }
  /** The recorded commands as shell lines, for readable assertions. */
  lines(): string[] {
    return this.calls.map(shellQuote);
  }
}
