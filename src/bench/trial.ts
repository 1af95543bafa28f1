/**
 * One bench trial's lifecycle, and what a bench run shares between trials
 * (the Bench class): attach the arm's fast paths, start the replicas, wait
 * until one request commits, run the client (with the nemesis, the samplers
 * and perf alongside), then stop everything, gather crashes and judge the
 * history. runBench (run.ts) drives it over the schedule of trials.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { LabError } from '../core/diagnostics.js';
import { RunPaths } from '../edges/paths.js';
import { NativeBinaries, nativeBinaries } from '../edges/build.js';
import { clientArgv, echoArgv, relayFloorArgv, replicaArgv } from '../core/argv.js';
import { Started, restartOn, startOn, stopAll, waitBound, waitFirstCommit } from '../lab/replicas.js';
import { reattachFastPaths } from '../lab/bpf.js';
import { until } from '../edges/proc.js';
import { PlanNode, clients, replicas } from '../core/plan.js';
import { RunResult } from '../edges/runner.js';
import { captureCrash, listCores, tailLines, waitForCore, withCoreDumps } from '../edges/crash.js';
import { parseClientOutput } from './clientOutput.js';
import { mergedOutput } from './clients.js';
import { EnvironmentFile, armNodeState } from './environment.js';
import { attachArm, bpfStateOf, detachAll } from './fastpaths.js';
import { BenchLab } from './lab.js';
import { LoggingRunner, saveResults } from './store.js';
import { ARMS, BenchOptions, CrashInfo, ResultsFile, Trial, TrialRecord, armUsesBpf, labSize } from './types.js';
import { NO_NEMESIS, NemesisSpec, leaderFromLogs } from './nemesis.js';
import { RSS_RULE } from './rss.js';
import { CpuSample, cpuRecord } from './cpu.js';
import { FaultState, runNemesis } from './nemesisRun.js';
import { sampleCpu, sampleRss } from './sampling.js';
import { Life, TrialProcs, trialFiles } from './trialProcs.js';
import { recordProfile } from './profileRun.js';
import { checkSafety, countForgeDrops } from './safetyRun.js';
import { BenchDeps } from './deps.js';

export type { BenchDeps, TrialImpl } from './deps.js';

/** The native binaries a bench runs (src/edges/build.ts). */
export type Binaries = NativeBinaries;
export { nativeBinaries };

/** Readiness: no sleeps, conditions with a deadline. */
const PROBE_ATTEMPT_MS = 3_000;
/** Client ids of readiness probes, far from the measuring client's. */
const PROBE_ID_BASE = 900_000;

class TrialError extends Error {}

/** Signals whose default action dumps core: the ones that mean "crashed". */
export const CORE_SIGNALS = new Set(['SIGSEGV', 'SIGABRT', 'SIGBUS', 'SIGFPE', 'SIGILL', 'SIGTRAP', 'SIGSYS', 'SIGQUIT', 'SIGXCPU', 'SIGXFSZ']);

/** Everything one bench run shares between trials. */
export class Bench {
  aborted: NodeJS.Signals | undefined;
  readonly results: ResultsFile;
  readonly env: EnvironmentFile;
  private readonly claimedCores = new Set<string>();
  constructor(
    readonly opts: BenchOptions & { nemesis: NemesisSpec[]; check: boolean },
    readonly deps: BenchDeps,
    readonly run: RunPaths,
    readonly runner: LoggingRunner,
    readonly bins: Binaries,
    /** The replica binary: the release build, or the lab build under --unsafe-no-recovery. */
    readonly replicaBinary: string = bins.replica,
  ) {
    this.results = {
      kind: 'electrode-lab-bench-results',
      version: 1,
      id: run.id,
      lab: opts.lab,
      createdAt: new Date().toISOString(),
      outcome: 'running',
      options: opts,
      skipped: [],
      records: [],
    };
    this.env = { kind: 'electrode-lab-bench-environment', version: 1, collectedAt: new Date().toISOString(), host: undefined as never, labs: {} };
  }

  save(): void {
    saveResults(this.run, this.results);
  }
  saveEnv(): void {
    writeFileSync(this.run.environmentJson, JSON.stringify(this.env, null, 2) + '\n');
  }

  async trial(t: Trial, lab: BenchLab): Promise<TrialRecord> {
    const arm = ARMS[t.arm];
    const useBpf = armUsesBpf(arm);
    const nemesis = this.opts.nemesis.find((n) => n.name === t.nemesis) ?? NO_NEMESIS;
    const t0 = performance.now();
    const rec: TrialRecord = {
      ...t, status: 'ok', crashed: false, startedAt: new Date().toISOString(), wallMs: 0, requests: 0, completed: 0, errors: 0, timeouts: 0,
      duration_s: 0, throughput_ops: null, latency_us: null, clientExitCode: null, crashes: [],
    };
    const started: Started[] = [];
    let client: RunResult | undefined;
    let clientTimedOut = false;
    const clientNodes = clients(lab.plan).slice(0, t.clients ?? 1);
    const clientNode = clientNodes[0];
    if (!clientNode) throw new LabError(`lab '${lab.plan.lab}' has no client node`);
    if (clientNodes.length < (t.clients ?? 1)) throw new LabError(`lab '${lab.plan.lab}' has ${clientNodes.length} client node(s), the trial wants ${t.clients}`, 'BENCH_CLIENTS');
    const files = trialFiles(lab, t.seq);
    const fault: FaultState = { killed: new Set() };
    const lives: Life[] = [];
    if (this.opts.unsafeNoRecovery && !arm.floor) rec.unsafeNoRecovery = true;
    let cpuBefore: CpuSample[] | undefined;
    let reorderInReplicas = false;
    const argvFor = (node: PlanNode, incarnation: number) =>
      withCoreDumps(
        replicaArgv(this.replicaBinary, {
          config: lab.paths.replicaConfigFile, index: node.index, logLevel: 'info',
          ...(useBpf ? { pinDir: node.pinDir } : {}),
          fast: arm,
          ...(this.opts.check ? { dumpLog: files.dump(node, incarnation) } : {}),
          ...(reorderInReplicas ? { reorderRate: nemesis.percent! / 100 } : {}),
          ...(this.opts.unsafeNoRecovery ? { labNoRecovery: true } : {}),
          extra: [...(this.opts.replicaArgs ?? []), ...(this.opts.replicaArgsFor?.[String(node.index)] ?? [])],
        }),
      );
    const procs: TrialProcs = {
      started, lives, killed: fault.killed,
      restart: async (s) => {
        const incarnation = lives.filter((l) => l.node.name === s.node.name).length;
        // a restarted replica gets fresh maps on its node, as `electrode-lab restart` gives it
        if (useBpf) await reattachFastPaths(lab, s.node.index, arm, 'auto', this.opts.hook ?? 'auto');
        const rec2 = await restartOn(lab, s.rec, argvFor(s.node, incarnation), incarnation);
        const next: Started = { node: s.node, rec: rec2, binary: this.replicaBinary };
        started[started.indexOf(s)] = next;
        lives.push({ node: s.node, incarnation, rec: rec2, dump: files.dump(s.node, incarnation) });
        return next;
      },
    };
    try {
      if (useBpf) {
        await attachArm(lab, arm, this.opts.hook);
        const armEnv = (this.env.labs[labSize(t.replicas, t.clients)]!.arms[t.arm] ??= {});
        if (!Object.keys(armEnv).length) {
          for (const n of replicas(lab.plan)) armEnv[n.name] = await armNodeState(lab, n);
          this.saveEnv();
        }
      }
      await this.prepareCores(lab);
      // reordering needs the kernel's sch_netem; without it the replicas reorder what they receive
      reorderInReplicas = nemesis.kind === 'reorder' && !(await this.linkReorder(lab));
      if (reorderInReplicas) fault.rec = { name: nemesis.name, kind: nemesis.kind, targets: replicas(lab.plan).map((x) => x.name), problem: undefined };
      if (arm.relay) {
        // the relay floor: VR's message pattern without the protocol (native/src/relay.c)
        started.push(...(await startOn(lab, lab.replicas(), `relay.t${t.seq}`, this.bins.replica, (node) => withCoreDumps(relayFloorArgv(this.bins.replica, lab.paths.replicaConfigFile, node.index)))));
      } else if (arm.floor) {
        // the floor: replica 0's address answers every datagram itself
        const r0 = lab.replicas()[0]!;
        started.push(...(await startOn(lab, [r0], `echo.t${t.seq}`, this.bins.echo, (node) => withCoreDumps(echoArgv(this.bins.echo, node.ip, node.port)))));
      } else {
        started.push(...(await startOn(lab, lab.replicas(), `replica.t${t.seq}`, this.replicaBinary, (node) => argvFor(node, 0))));
        for (const s of started) lives.push({ node: s.node, incarnation: 0, rec: s.rec, dump: files.dump(s.node, 0) });
      }
      await this.waitReady(lab, started, clientNode, t, arm.floor === true);
      // every client node drives load; on separate machines each gets keys of its own, so that
      // histories on clocks that differ are judged per key, which linearizability allows
      const argvOf = (node: PlanNode, i: number) =>
        withCoreDumps(
          clientArgv(this.bins.client, {
            config: lab.paths.replicaConfigFile,
            ...(this.opts.duration !== undefined ? { duration: this.opts.duration } : { requests: this.opts.requests ?? 1000 }),
            warmup: this.opts.warmup, threads: t.threads,
            ...(arm.floor ? { echo: true } : this.opts.check ? { history: files.history(node), ackLog: files.acks(node) } : {}),
            ...(clientNodes.length > 1 && !lab.sharedKernel ? { keyPrefix: `c${i}k` } : {}),
          }),
        );
      cpuBefore = await sampleCpu((l) => this.deps.progress.warn(l), lab, started, clientNode);
      const clientStart = performance.now();
      const runs = clientNodes.map((node, i) => lab.node(node).exec(argvOf(node, i), { check: false, timeoutMs: this.opts.timeoutMs }));
      // the nemesis, perf and the samplers run until the last client is done
      const clientRun = Promise.all(runs).then((rs) => rs[0]!);
      // a client that fails rejects it; the await on `runs` below reports that, so no one else must
      clientRun.catch(() => undefined);
      const profiling = this.profileFor(t, lab) ? recordProfile(this, t, clientRun) : undefined;
      const rssSampling = this.opts.rssSampleMs && !arm.floor ? sampleRss(lab, procs, clientNode, clientRun, this.opts.rssSampleMs) : undefined;
      if (reorderInReplicas) {
        fault.rec!.injectedAt = Date.now();
        fault.rec!.note = 'no sch_netem in this kernel: the replicas reordered what they received (--reorder-rate), for the whole trial';
      } else if (nemesis.kind !== 'none') {
        // a fault that could not be made is on record; the client still runs to its end
        await runNemesis(this, nemesis, t, lab, procs, clientNode, clientRun, fault).catch((e: Error) => {
          fault.rec = { ...(fault.rec ?? { name: nemesis.name, kind: nemesis.kind, targets: [] }), problem: e.message.split('\n').slice(0, 3).join(' | ') };
        });
      }
      const results = await Promise.all(runs);
      const windowMs = performance.now() - clientStart;
      if (rssSampling) rec.rss = await rssSampling;
      const cpuAfter = await sampleCpu((l) => this.deps.progress.warn(l), lab, started, clientNode);
      if (profiling) rec.profile = await profiling;
      results.forEach((r, i) => writeFileSync(join(this.nodeDir(clientNodes[i]!.name), `client.t${t.seq}.log`), r.stdout + (r.stderr ? `\n--- stderr ---\n${r.stderr}` : '')));
      // the trial fails on the first client that failed; with one client that is the client
      client = results.find((r) => r.signal !== null || r.exitCode !== 0) ?? results[0]!;
      clientTimedOut = client.signal !== null && client.durationMs >= this.opts.timeoutMs - 50;
      rec.clientExitCode = client.exitCode;
      const parsedAll = results.map((r) => parseClientOutput(r.stdout));
      const parsed = mergedOutput(parsedAll, clientNodes, lab.sharedKernel, rec);
      if (parsed.result) {
        const r = parsed.result;
        Object.assign(rec, { requests: r.requests, completed: r.completed, errors: r.errors, timeouts: r.timeouts, duration_s: r.duration_s, throughput_ops: r.throughput_ops, latency_us: r.latency_us });
        if (r.warmup_completed !== undefined) rec.warmupCompleted = r.warmup_completed;
        if (parsed.source !== 'json') rec.partial = true;
        if (cpuBefore && cpuAfter) {
          const logs = arm.floor ? [] : await Promise.all(started.map((x) => this.readNodeFile(lab, x.node, x.rec.logFile)));
          const leader = arm.floor ? started[0] : started.find((x) => x.node.index === leaderFromLogs(logs, lab.plan.cluster.n));
          const cpu = cpuRecord({
            before: cpuBefore, after: cpuAfter, windowMs, ops: r.completed + (r.warmup_completed ?? 0),
            leaderPid: leader?.rec.pid, followerPids: started.filter((x) => x !== leader).map((x) => x.rec.pid),
            client: { ...(r.cpu_us !== undefined ? { cpuUs: r.cpu_us } : {}), ...(r.ctx_switches !== undefined ? { ctxSwitches: r.ctx_switches } : {}) },
          });
          if (cpu) rec.cpu = cpu;
        }
      }
      if (clientTimedOut) throw new TrialError(`client did not finish within ${this.opts.timeoutMs} ms (raise --timeout-ms); ${parsed.problem ?? ''}`.trim());
      if (client.signal) throw new TrialError(this.aborted ? `interrupted (${this.aborted})` : `client killed by ${client.signal}`);
      if (client.exitCode !== 0) {
        throw new TrialError(`client exited ${client.exitCode}: ${(client.stderr.trim().split('\n').at(-1) ?? '') || parsed.problem || 'no message'}`);
      }
      if (!parsed.result) throw new TrialError(`client output unusable: ${parsed.problem}`);
      // a trial that measured nothing says nothing: never "ok"
      if (!(parsed.result.completed > 0)) throw new TrialError(`nothing was measured: 0 requests completed after the ${this.opts.warmup} s warm-up (${parsed.result.warmup_completed ?? '?'} completed during it); raise --requests or --duration, or shorten --warmup`);
      const stuck = fault.rec?.actions?.filter((a) => a.problem) ?? [];
      if (stuck.length) throw new TrialError(`nemesis: ${stuck.map((a) => `${a.node ?? '?'} ${a.problem}`).join('; ')}`);
      const grown = rec.rss?.verdicts.filter((v) => v.grown) ?? [];
      if (grown.length) throw new TrialError(`RSS grew (${RSS_RULE}): ${grown.map((v) => `${v.node} pid ${v.pid} ${v.firstKb} -> ${v.lastKb} kB (+${v.growthPercent}%)`).join('; ')}`);
    } catch (e) {
      rec.status = 'failed';
      rec.error = (e as Error).message.split('\n').slice(0, 3).join(' | ');
    } finally {
      // a fault left in place would poison the stop and the next trial
      if (fault.heal) await fault.heal().catch((e: Error) => this.deps.progress.warn(`nemesis heal: ${e.message}`));
      if (fault.rec) rec.fault = fault.rec;
      await this.finishTrial(t, lab, started, useBpf, rec, client, clientTimedOut, clientNode, fault.killed);
      if (this.opts.check && !arm.floor) await checkSafety(this, t, lab, procs, clientNodes, rec);
      rec.wallMs = Math.round(performance.now() - t0);
    }
    return rec;
  }

  private profiled = new Set<string>();
  /** --profile: the first trial of each replica count x arm at the highest thread count, without a nemesis. */
  private profileFor(t: Trial, lab: BenchLab): boolean {
    const key = `${t.replicas}/${t.arm}`;
    if (!this.opts.profile || !lab.sharedKernel || t.nemesis !== 'none' || t.threads !== Math.max(...this.opts.threads) || this.profiled.has(key)) return false;
    this.profiled.add(key);
    return true;
  }

  private reorderable = new Map<string, boolean>();
  /** Can this lab's links reorder (sch_netem)? Asked once per lab size. */
  private async linkReorder(lab: BenchLab): Promise<boolean> {
    const key = `${lab.plan.lab}/${lab.plan.cluster.n}`;
    if (!this.reorderable.has(key)) this.reorderable.set(key, await lab.canReorder());
    return this.reorderable.get(key)!;
  }

  /** A node's file as text ('' when it has none): local on netns, copied out of a VM. */
  async readNodeFile(lab: BenchLab, node: PlanNode, path: string, dest?: string): Promise<string> {
    const local = dest ?? join(this.run.root, '.scratch', node.name, basename(path));
    if (!(await lab.node(node).copyOut(path, local).catch(() => false))) return '';
    try {
      return readFileSync(local, 'utf8');
    } catch {
      return '';
    }
  }

  nodeDir(node: string): string {
    const d = this.run.nodeDir(node);
    mkdirSync(d, { recursive: true });
    return d;
  }

  /** Every replica bound its port, then one request commits end to end (through the provider: host /proc for netns, ssh for VMs). */
  private async waitReady(lab: BenchLab, started: Started[], clientNode: PlanNode, t: Trial, portsOnly = false): Promise<void> {
    const timeoutMs = lab.startTimeoutMs;
    const bound = await waitBound(lab, started, timeoutMs);
    if (bound.dead.length) {
      const why = bound.dead.map((s) => `${s.node.name}: ${lastLogLine(s.rec.logFile)}`).join('; ');
      throw new TrialError(`replica(s) exited during start: ${why}`);
    }
    if (!bound.ok) throw new TrialError(`replicas did not bind their UDP ports within ${timeoutMs / 1000}s (${bound.pending.map((s) => s.node.name).join(', ')})`);
    if (portsOnly) return;
    // keys of its own: what it writes must not show up in the measured client's history
    const c = await waitFirstCommit(lab, started, lab.node(clientNode), this.bins.client, PROBE_ID_BASE + t.seq * 64, timeoutMs, PROBE_ATTEMPT_MS);
    if (c.ok) return;
    if (c.dead.length) throw new TrialError(`replica(s) died before the first request committed: ${c.dead.map((s) => s.node.name).join(', ')}`);
    const last = c.last;
    throw new TrialError(`no request committed within ${timeoutMs / 1000}s of start (last probe: ${last ? (last.signal ?? `exit ${last.exitCode}`) : 'none'} ${last?.stderr.trim().split('\n').at(-1) ?? ''})`);
  }

  private async finishTrial(t: Trial, lab: BenchLab, started: Started[], useBpf: boolean, rec: TrialRecord, client: RunResult | undefined, clientTimedOut: boolean, clientNode: PlanNode, killed: Set<number>): Promise<void> {
    const crashes: CrashInfo[] = [];
    const bpfState = (node: PlanNode) => (useBpf ? () => bpfStateOf(lab, node) : undefined);
    // 1. replicas that died while we were not stopping them (and not by the nemesis):
    // crash folder while the eBPF state is still attached
    const deadEarly: Started[] = [];
    for (const s of started) if (!killed.has(s.rec.pid) && !(await lab.node(s.node).alive(s.rec))) deadEarly.push(s);
    for (const s of deadEarly) {
      await this.pullLog(lab, s);
      // where the core is depends on the provider: this host's cores folder, or inside a VM (gdb runs there)
      const found = await lab.node(s.node).findCore(s.rec, s.binary, this.run.coresDir);
      const core = found.core;
      if (core) this.claimedCores.add(core.path);
      // with or without a core: the folder keeps its log tail and the eBPF state
      crashes.push(await captureCrash({
        run: this.run, runner: this.runner, node: s.node.name, process: basename(s.binary), pid: s.rec.pid, binary: s.binary, logFile: s.rec.logFile, core, bpfState: bpfState(s.node),
        collect: (dir) => lab.node(s.node).collect(dir),
        ...(found.backtraceText !== undefined ? { backtraceText: found.backtraceText } : {}), ...(found.coreNote ? { coreNote: found.coreNote } : {}),
      }));
    }
    // 2. the client, if a crash signal ended it (SIGINT/SIGTERM/SIGKILL come from a person or our timeout)
    if (client?.signal && !clientTimedOut && CORE_SIGNALS.has(client.signal)) {
      const core = await this.waitForUnclaimedCore(basename(this.bins.client));
      crashes.push(await captureCrash({ run: this.run, runner: this.runner, node: clientNode.name, process: 'client', pid: core?.pid ?? 0, binary: this.bins.client, signal: client.signal, core, bpfState: undefined }));
    }
    // 3. stop the rest (SIGTERM; a crash while shutting down still leaves a core)
    // stop() also forgets the pid file of a replica that is already dead
    await stopAll(lab, started.map((s) => s.rec));
    for (const s of started) {
      if (deadEarly.includes(s) || killed.has(s.rec.pid)) continue;
      const core = listCores(this.run.coresDir).find((c) => c.pid === s.rec.pid);
      if (core) {
        this.claimedCores.add(core.path);
        crashes.push(await captureCrash({ run: this.run, runner: this.runner, node: s.node.name, process: basename(s.binary), pid: s.rec.pid, binary: s.binary, logFile: s.rec.logFile, core, bpfState: bpfState(s.node), collect: (dir) => lab.node(s.node).collect(dir) }));
      }
    }
    if (useBpf) {
      const problems = await detachAll(lab);
      if (problems.length) this.deps.progress.warn(`detach: ${problems.join('; ')}`);
    }
    for (const s of started) {
      if (!deadEarly.includes(s)) await this.pullLog(lab, s);
      if (existsSync(s.rec.logFile)) copyFileSync(s.rec.logFile, join(this.nodeDir(s.node.name), basename(s.rec.logFile)));
    }
    if (rec.fault?.forge) countForgeDrops(this.runner, rec.fault.forge, started);
    // a dead replica without a core (exit code, SIGKILL) is a failure, not a crash we can explain
    const realCrashes = crashes.filter((c) => c.core || c.signal);
    const vanished = crashes.filter((c) => !c.core && !c.signal);
    rec.crashes = crashes;
    if (realCrashes.length) {
      rec.crashed = true;
      rec.status = 'crashed';
    } else if (vanished.length && rec.status === 'ok') {
      rec.status = 'failed';
      rec.error = `${vanished.map((c) => c.node).join(', ')} exited during the trial without a core (see ${vanished[0]!.dir})`;
    }
    void t;
  }

  private coresReady = new Set<string>();
  /** Where the nodes' kernels write cores, once per lab size (a provider hook: VMs set their own core_pattern). */
  private async prepareCores(lab: BenchLab): Promise<void> {
    const key = `${lab.plan.lab}/${lab.plan.cluster.n}`;
    if (this.coresReady.has(key)) return;
    await lab.prepareCores();
    this.coresReady.add(key);
  }

  /** The process log at the same path on this host (a VM keeps it in the guest), so crash folders and the run folder have it. */
  private async pullLog(lab: BenchLab, s: Started): Promise<void> {
    await lab.node(s.node).copyOut(s.rec.logFile, s.rec.logFile, 4_000_000).catch(() => false);
  }

  private async waitForUnclaimedCore(comm: string) {
    let found: ReturnType<typeof listCores>[number] | undefined;
    await until(() => {
      found = listCores(this.run.coresDir).find((c) => c.comm === comm.slice(0, 15) && !this.claimedCores.has(c.path));
      return found !== undefined;
    }, 3000);
    if (found) {
      this.claimedCores.add(found.path);
      return (await waitForCore(this.run.coresDir, found.pid, 3000)) ?? found;
    }
    return undefined;
  }
}

function lastLogLine(file: string): string {
  try {
    return tailLines(readFileSync(file, 'utf8'), 1).trim() || '(empty log)';
  } catch {
    return '(no log)';
  }
}
