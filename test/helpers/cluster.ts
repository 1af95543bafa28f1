/**
 * Multi-process cluster helpers for the native replica and client: start
 * replicas, wait for conditions (log lines, dump files, process exit — never
 * fixed sleeps), kill by PID, and check the committed logs against what the
 * client saw acknowledged.
 *
 * Where processes run is a `NodeLauncher`: `LoopbackLauncher` runs them
 * here on 127.0.0.1; `providerLauncher` (netns) runs them inside a lab's
 * nodes through the provider, so the same scenarios run on both.
 */
import { execa } from 'execa';
import { ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Plan } from '../../src/core/plan.js';
import { processAlive } from '../../src/edges/proc.js';
export { processAlive };
import type { Provider, ProviderContext } from '../../src/providers/provider.js';
import type { RunResult } from '../../src/edges/runner.js';

export const ROOT = join(import.meta.dirname, '..', '..');
export const NATIVE_BUILD = join(ROOT, 'native', 'build');
export const ASAN_BIN = join(NATIVE_BUILD, 'asan');

/** Builds native/ (release + sanitizer builds); make is a no-op when up to date. */
export async function buildNative(): Promise<void> {
  const r = await execa('make', ['-s', '-C', join(ROOT, 'native'), 'all', 'asan'], { reject: false });
  if (r.exitCode !== 0) throw new Error(`make -C native failed:\n${r.stderr || r.stdout}`);
}

/** Where and how processes of a cluster run. */
export interface NodeLauncher {
  /**
   * Starts a long-running process on a node; stdout+stderr go to a log file
   * (`logFile`, unless the launcher keeps logs elsewhere). Returns its PID and
   * the log file actually used.
   */
  spawn(node: string, name: string, argv: string[], logFile: string): Promise<{ pid: number; logFile: string }>;
  /** Runs a command on a node to completion. */
  run(node: string, argv: string[], timeoutMs: number): Promise<RunResult>;
  /** Stops everything this launcher started that still runs (SIGKILL by PID). */
  cleanup(): Promise<void>;
}


/** Runs processes as our children on this host (the cluster uses 127.0.0.1). */
export class LoopbackLauncher implements NodeLauncher {
  private readonly children = new Map<number, ChildProcess>();

  async spawn(_node: string, _name: string, argv: string[], logFile: string): Promise<{ pid: number; logFile: string }> {
    const [file, ...args] = argv;
    if (!file) throw new Error('empty argv');
    const fd = openSync(logFile, 'a');
    try {
      const child = spawn(file, args, { stdio: ['ignore', fd, fd], env: { ...process.env, ASAN_OPTIONS: 'abort_on_error=0:detect_leaks=1' } });
      const pid = await new Promise<number>((ok, fail) => {
        child.once('error', (e) => fail(new Error(`could not start ${file}: ${e.message}`)));
        child.once('spawn', () => ok(child.pid!));
      });
      this.children.set(pid, child);
      return { pid, logFile };
    } finally {
      closeSync(fd);
    }
  }

  async run(_node: string, argv: string[], timeoutMs: number): Promise<RunResult> {
    const [file, ...args] = argv;
    if (!file) throw new Error('empty argv');
    const t0 = performance.now();
    const r = await execa(file, args, { reject: false, timeout: timeoutMs });
    return {
      argv,
      exitCode: r.exitCode ?? null,
      signal: r.signal ? String(r.signal) : null,
      durationMs: Math.round(performance.now() - t0),
      stdout: String(r.stdout ?? ''),
      stderr: String(r.stderr ?? ''),
    };
  }

  async cleanup(): Promise<void> {
    for (const [pid, child] of this.children) {
      if (child.exitCode === null && child.signalCode === null) process.kill(pid, 'SIGKILL');
    }
    await waitFor('our replicas to exit', () => [...this.children.keys()].every((p) => !processAlive(p)), 10_000);
    this.children.clear();
  }
}

/**
 * Runs processes inside a lab's nodes through its provider (netns: nsenter
 * into the node's namespace). The PIDs are host PIDs, so kill-by-PID works
 * the same; the lab's `down` removes whatever is left.
 */
export class ProviderLauncher implements NodeLauncher {
  private readonly pids: number[] = [];
  constructor(private readonly provider: Provider, private readonly plan: Plan, private readonly ctx: ProviderContext) {}

  private node(name: string) {
    const n = this.plan.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`lab ${this.plan.lab} has no node ${name}`);
    return n;
  }

  async spawn(node: string, name: string, argv: string[]): Promise<{ pid: number; logFile: string }> {
    const rec = await this.provider.spawn(this.plan, this.node(node), name, argv, this.ctx);
    this.pids.push(rec.pid);
    return { pid: rec.pid, logFile: rec.logFile };
  }

  async run(node: string, argv: string[], timeoutMs: number): Promise<RunResult> {
    return this.provider.exec(this.plan, this.node(node), argv, this.ctx, { timeoutMs, check: false });
  }

  async cleanup(): Promise<void> {
    for (const pid of this.pids) if (processAlive(pid)) process.kill(pid, 'SIGKILL');
    await waitFor('lab processes to exit', () => this.pids.every((p) => !processAlive(p)), 10_000);
    this.pids.length = 0;
  }
}

/** Polls a condition (no fixed sleeps); throws naming `what` at the deadline. */
export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 10_000, pollMs = 25): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** One line of a replica's --dump-log. */
export interface LogOp {
  opnum: number;
  client: string;
  request: string;
  op: string;
  key: string;
  /** The replica installed a snapshot of this op just before this one (`# snapshot S` line): this op is S+1. */
  snapshot?: number;
}

export function parseDump(text: string): LogOp[] {
  const out: LogOp[] = [];
  // the replica appends as ops commit: a line after the last newline may still be arriving
  const whole = text.slice(0, text.lastIndexOf('\n') + 1);
  let snapshot: number | undefined;
  for (const line of whole.split('\n')) {
    if (!line) continue;
    // `# snapshot S`: the replica installed a snapshot of op S (native/PROTOCOL.md, --dump-log)
    const m = /^# snapshot (\d+)$/.exec(line);
    if (m) {
      snapshot = Number(m[1]);
      continue;
    }
    const [opnum, client, request, op, key] = line.split(' ');
    if (!opnum || !client || !request || !op || key === undefined) throw new Error(`bad dump line '${line}'`);
    out.push({ opnum: Number(opnum), client, request, op, key, ...(snapshot !== undefined ? { snapshot } : {}) });
    snapshot = undefined;
  }
  return out;
}

/** The op ranges a log holds through snapshots, not lines: below its first op, and each jump a `# snapshot S` line explains. */
function snapshotCovered(log: LogOp[]): [number, number][] {
  const out: [number, number][] = [[0, (log[0]?.opnum ?? 1) - 1]];
  log.forEach((o, i) => {
    if (i > 0 && o.snapshot !== undefined) out.push([log[i - 1]!.opnum + 1, o.snapshot]);
  });
  return out;
}

/** `<client_id> <request_id>` of the client's --ack-log lines (`<client_id> <request_id> <opnum>`). */
export function parseAcks(text: string): string[] {
  return text.split('\n').filter(Boolean).map((l) => l.trim().split(/\s+/).slice(0, 2).join(' '));
}

/**
 * Problems with a set of committed logs, given what the client saw
 * acknowledged: op numbers run 1..n; the logs agree op by op (each is a
 * prefix of the longest); every acknowledged request is in every log; and
 * each client's requests appear in the order it issued them.
 */
/**
 * Per log, the acknowledged requests it lacks. A replica that recovered
 * installed a snapshot of op S and dumps from S+1: an ack another replica
 * holds at an op below its first op is in its state; one nobody holds is not.
 */
export function missingAcks(acks: string[], logs: Map<string, LogOp[]>): Map<string, string[]> {
  const opOf = new Map<string, number>();
  for (const log of logs.values()) for (const o of log) if (!opOf.has(`${o.client} ${o.request}`)) opOf.set(`${o.client} ${o.request}`, o.opnum);
  const out = new Map<string, string[]>();
  for (const [name, log] of logs) {
    const covered = snapshotCovered(log);
    const have = new Set(log.map((o) => `${o.client} ${o.request}`));
    out.set(name, acks.filter((a) => {
      const at = opOf.get(a) ?? Infinity;
      return !have.has(a) && !covered.some(([lo, hi]) => at >= lo && at <= hi);
    }));
  }
  return out;
}

export function historyProblems(acks: string[], logs: Map<string, LogOp[]>): string[] {
  const problems: string[] = [];
  // A replica that recovered installed a snapshot of op S and dumps from S+1:
  // each log is contiguous from its first op, and ops are compared by number.
  const byOp = new Map<number, { name: string; o: LogOp }>();
  // A follower behind every log catches up the same way mid-life: the jump
  // after a `# snapshot S` line goes to S+1, and only there.
  for (const [name, log] of logs) {
    let expected = log[0]?.opnum ?? 1;
    log.forEach((o, i) => {
      if (i > 0 && o.snapshot !== undefined) expected = o.snapshot + 1;
      if (o.opnum !== expected && problems.length < 20) problems.push(`${name}: line ${i + 1} has op ${o.opnum}, expected ${expected}`);
      expected = o.opnum + 1;
    });
  }
  const diverged = new Set<string>();
  for (const [name, log] of logs) {
    for (const o of log) {
      const b = byOp.get(o.opnum);
      if (!b) byOp.set(o.opnum, { name, o });
      else if (!diverged.has(name) && (o.client !== b.o.client || o.request !== b.o.request || o.op !== b.o.op || o.key !== b.o.key)) {
        problems.push(`${name}: op ${o.opnum} is ${o.client}/${o.request} ${o.op} ${o.key}, ${b.name} has ${b.o.client}/${b.o.request} ${b.o.op} ${b.o.key}`);
        diverged.add(name);
      }
    }
  }
  const lacking = missingAcks(acks, logs);
  for (const [name, log] of logs) {
    const first = new Map<string, number>();
    log.forEach((o, i) => {
      const id = `${o.client} ${o.request}`;
      if (!first.has(id)) first.set(id, i);
    });
    const missing = lacking.get(name)!;
    if (missing.length) problems.push(`${name}: ${missing.length} acknowledged request(s) missing from the committed log, e.g. ${missing.slice(0, 3).join(', ')}`);
    const lastPerClient = new Map<string, { req: bigint; at: number }>();
    for (const a of acks) {
      const at = first.get(a);
      if (at === undefined) continue;
      const [client, req] = a.split(' ') as [string, string];
      const prev = lastPerClient.get(client);
      if (prev && BigInt(req) > prev.req && at < prev.at) {
        problems.push(`${name}: client ${client}'s request ${req} is committed before its earlier request ${prev.req}`);
        break;
      }
      lastPerClient.set(client, { req: BigInt(req), at });
    }
  }
  return problems;
}

export interface ClientResult {
  run: RunResult;
  json: {
    kind: string;
    requests: number;
    completed: number;
    errors: number;
    timeouts: number;
    throughput_ops: number;
    latency_us: Record<string, number>;
  };
  acks: string[];
}

export interface ClusterOptions {
  /** Scratch folder for configs, logs, dumps (created). */
  dir: string;
  n: number;
  f: number;
  /** Replica addresses, index order. */
  addrs: { ip: string; port: number }[];
  /** Node names for the launcher: replicas, then the client's node. */
  replicaNodes: string[];
  clientNode: string;
  launcher: NodeLauncher;
  /** Folder with replica and client (default: the ASan builds). */
  binDir?: string;
  /** Process name for the launcher (unique per cluster where logs are kept per node and name). */
  procName?: string;
}

/** Loopback addresses on a port range of our own (base..base+n-1). */
export function loopbackAddrs(n: number, base: number): { ip: string; port: number }[] {
  return Array.from({ length: n }, (_, i) => ({ ip: '127.0.0.1', port: base + i }));
}

// Below the kernel's ephemeral range (32768+), so no client socket anywhere
// on the host can be holding a port a replica is about to bind.
let portCursor = 20_000 + (process.pid % 400) * 30;
/** A fresh port range per cluster so a test never meets another's leftovers. */
export function nextPortBase(width = 16): number {
  if (portCursor + width > 32_700) portCursor = 20_000;
  const base = portCursor;
  portCursor += width;
  return base;
}

export class TestCluster {
  readonly configFile: string;
  readonly pids: (number | undefined)[];
  private readonly logs: string[];
  readonly killed = new Set<number>();
  private readonly bin: string;

  constructor(readonly o: ClusterOptions) {
    mkdirSync(o.dir, { recursive: true });
    this.bin = o.binDir ?? ASAN_BIN;
    this.configFile = join(o.dir, 'replica.config');
    writeFileSync(this.configFile, [`f ${o.f}`, ...o.addrs.map((a) => `replica ${a.ip}:${a.port}`)].join('\n') + '\n');
    this.pids = new Array<number | undefined>(o.n).fill(undefined);
    this.logs = Array.from({ length: o.n }, (_, i) => join(o.dir, `replica${i}.log`));
  }

  logFile(i: number): string {
    return this.logs[i]!;
  }
  dumpFile(i: number): string {
    return join(this.o.dir, `replica${i}.dump`);
  }
  log(i: number): string {
    return existsSync(this.logFile(i)) ? readFileSync(this.logFile(i), 'utf8') : '';
  }

  /** Starts every replica (or those in `only`; `dump: false`: without --dump-log) and waits until each says it is ready. */
  async start(extra: (i: number) => string[] = () => [], only?: number[], o: { dump?: boolean } = {}): Promise<void> {
    const which = only ?? Array.from({ length: this.o.n }, (_, i) => i);
    for (const i of which) {
      const dump = o.dump === false ? [] : ['--dump-log', this.dumpFile(i)];
      const argv = [join(this.bin, 'replica'), '-c', this.configFile, '-i', String(i), ...dump, ...extra(i)];
      const started = await this.o.launcher.spawn(this.o.replicaNodes[i]!, this.o.procName ?? 'replica', argv, this.logFile(i));
      this.pids[i] = started.pid;
      this.logs[i] = started.logFile;
    }
    for (const i of which) {
      await waitFor(`replica ${i} to be ready (log ${this.logFile(i)})`, () => {
        if (!processAlive(this.pids[i]!)) throw new Error(`replica ${i} exited during start:\n${this.log(i).slice(-2000)}`);
        return this.log(i).includes(`replica ${i} ready`);
      });
    }
  }

  alive(i: number): boolean {
    const pid = this.pids[i];
    return pid !== undefined && processAlive(pid);
  }

  survivors(): number[] {
    return Array.from({ length: this.o.n }, (_, i) => i).filter((i) => !this.killed.has(i));
  }

  /** SIGKILL by PID and wait until it is gone. */
  async kill(i: number): Promise<void> {
    const pid = this.pids[i];
    if (pid === undefined) throw new Error(`replica ${i} was not started`);
    process.kill(pid, 'SIGKILL');
    this.killed.add(i);
    await waitFor(`replica ${i} (pid ${pid}) to die`, () => !processAlive(pid));
  }

  /** SIGSTOP / SIGCONT by PID: the replica stops reading; its socket buffer overflows. */
  pause(i: number): void {
    process.kill(this.pids[i]!, 'SIGSTOP');
  }
  resume(i: number): void {
    process.kill(this.pids[i]!, 'SIGCONT');
  }

  /** Committed ops of replica i right now (asks it to dump with SIGUSR1). */
  dump(i: number): LogOp[] {
    const f = this.dumpFile(i);
    return existsSync(f) ? parseDump(readFileSync(f, 'utf8')) : [];
  }

  /** Waits until replica i has committed at least `ops` ops (SIGUSR1 dumps, polled). */
  async waitCommitted(i: number, ops: number, timeoutMs = 30_000): Promise<void> {
    await waitFor(
      `replica ${i} to commit ${ops} ops`,
      () => {
        if (!this.alive(i)) throw new Error(`replica ${i} died:\n${this.log(i).slice(-2000)}`);
        process.kill(this.pids[i]!, 'SIGUSR1');
        return this.dump(i).length >= ops;
      },
      timeoutMs,
      100,
    );
  }

  /** Runs the client to completion on the client node. */
  async runClient(args: string[], timeoutMs = 120_000): Promise<ClientResult> {
    const ackLog = join(this.o.dir, `acks-${Date.now()}-${Math.floor(Math.random() * 1e6)}.txt`);
    const argv = [join(this.bin, 'client'), '-c', this.configFile, '--ack-log', ackLog, ...args];
    const run = await this.o.launcher.run(this.o.clientNode, argv, timeoutMs);
    const last = run.stdout.trim().split('\n').pop() ?? '';
    let json: ClientResult['json'];
    try {
      json = JSON.parse(last) as ClientResult['json'];
    } catch {
      throw new Error(`client printed no JSON line (exit ${run.exitCode}, signal ${run.signal}):\n${run.stdout.slice(-1000)}\n${run.stderr.slice(-2000)}`);
    }
    const acks = existsSync(ackLog) ? parseAcks(readFileSync(ackLog, 'utf8')) : [];
    return { run, json, acks };
  }

  /**
   * Waits until every surviving replica's committed log holds every
   * acknowledged request, then stops them (SIGTERM) and checks their final
   * dumps and exit (clean: "stats:" line, no sanitizer report).
   * Returns the history problems (empty = good).
   */
  async settleAndCheck(acks: string[], timeoutMs = 30_000): Promise<string[]> {
    const live = this.survivors();
    await waitFor(
      `surviving replicas ${live.join(',')} to commit all ${acks.length} acknowledged requests`,
      () => {
        const dumps = new Map<string, LogOp[]>();
        for (const i of live) {
          if (!this.alive(i)) throw new Error(`replica ${i} died:\n${this.log(i).slice(-2000)}`);
          process.kill(this.pids[i]!, 'SIGUSR1');
          dumps.set(`replica${i}`, this.dump(i));
        }
        return [...missingAcks(acks, dumps).values()].every((m) => m.length === 0);
      },
      timeoutMs,
      150,
    );
    await this.stop();
    for (const i of live) {
      const log = this.log(i);
      if (/AddressSanitizer|runtime error:|LeakSanitizer/.test(log)) throw new Error(`replica ${i} sanitizer report:\n${log.slice(-4000)}`);
      if (!log.includes('stats:')) throw new Error(`replica ${i} did not exit cleanly:\n${log.slice(-2000)}`);
    }
    const logs = new Map<string, LogOp[]>();
    for (const i of live) logs.set(`replica${i}`, this.dump(i));
    return historyProblems(acks, logs);
  }

  /** SIGTERM to every live replica and wait for them to exit. */
  async stop(): Promise<void> {
    const live = this.survivors().filter((i) => this.alive(i));
    for (const i of live) process.kill(this.pids[i]!, 'SIGTERM');
    await waitFor(`replicas ${live.join(',')} to exit after SIGTERM`, () => live.every((i) => !this.alive(i)), 15_000);
  }

  /** The view the cluster reached, from the replicas' logs. */
  highestNormalView(): number {
    let v = 0;
    for (let i = 0; i < this.o.n; i++) {
      for (const m of this.log(i).matchAll(/view (\d+) normal/g)) v = Math.max(v, Number(m[1]));
    }
    return v;
  }
}
