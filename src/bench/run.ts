/**
 * `electrode-lab bench`: for each replica count, bring the lab to that size;
 * for each trial (arm x threads x repeat, arms rotated per repeat) attach
 * exactly that arm's fast paths, start FRESH replicas, wait until a request
 * commits, run the client in the client node, stop the replicas, detach.
 * Cores go into the run folder; a process that died from a signal gets a
 * crash folder and the trial is marked crashed; the bench goes on.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { DiagnosticsError, LabError } from '../diagnostics.js';
import { LabPaths, RunPaths, projectRoot } from '../paths.js';
import { NativeBinaries, buildLabFaultsReplica, nativeBinaries } from '../build.js';
import { clientArgv, echoArgv, forgeArgv, gdbArgv, incarnationDumpLog, replicaArgv } from '../argv.js';
import { Started, logTail, restartOn, startOn, stopAll, waitBound, waitFirstCommit } from '../replicas.js';
import { reattachFastPaths } from '../bpf.js';
import { normalAfter, replicaStatusFromLog, describeReplicaStatus } from '../replicaStatus.js';
import { abortedBy } from '../cancel.js';
import { loadPlan } from '../state.js';
import { until } from '../proc.js';
import { PlanNode, clients, replicas } from '../plan.js';
import { ProcessRecord, Progress, Provider } from '../providers/provider.js';
import { RunResult, Runner } from '../runner.js';
import { SpecInput } from '../spec.js';
import { CoreFile, captureCrash, listCores, tailLines, waitForCore, withCoreDumps } from '../crash.js';
import { parseClientOutput } from './clientOutput.js';
import { EnvironmentFile, armNodeState, hostEnvironment, nodeEnvironment } from './environment.js';
import { attachArm, bpfStateOf, detachAll, fastPathsUnavailable, loaderPath } from './fastpaths.js';
import { BenchLab, LabControl } from './lab.js';
import { renderReport } from './report.js';
import { schedule } from './schedule.js';
import { LoggingRunner, guardRunCores, newRunPaths, saveResults } from './store.js';
import { ARMS, ArmName, BenchOptions, CrashInfo, ResultsFile, Trial, TrialRecord, armReplicaFlags, armUsesBpf } from './types.js';
import { ActionRecord, DEFAULT_FORGE_RATE, FORGE_LIES, ForgeRecord, NO_NEMESIS, NemesisRecord, NemesisSpec, forgeDrops, highestView, leaderFromLogs, nemesisProblems, nemesisWindow, parseForgeOutput, recoveryMs } from './nemesis.js';
import { exitStats } from '../logline.js';
import { DEFAULT_RESTART_DELAY_MS, ScheduleKind, ScheduledFault, describeScheduled, killRestartSchedule, randomSchedule } from './nemesisSchedule.js';
import { RSS_RULE, RssSeries, parseRssSample, rssSampleScript, rssVerdict } from './rss.js';
import { DumpInput, analyzeTrial, isSafe } from './safety.js';
import { CpuSample, cpuRecord, cpuSampleScript, parseCpuSample } from './cpu.js';
import { ProfileRecord, profileFromPerfScript } from './profiling.js';
import { UpstreamBench } from '../upstream/bench.js';

export interface BenchDeps {
  env: NodeJS.ProcessEnv;
  /** Labs home. */
  home: string;
  runner: Runner;
  progress: Progress;
  getProvider(name: string): Provider;
  /** Spec fields for a lab the bench creates (provider, subnet, base port...). */
  labSpec?: SpecInput;
  /** Wait for another bench's core capture to finish instead of refusing (tests). */
  coreLockWaitMs?: number;
  /** The CLI's cancellation (first Ctrl-C: finish the current trial, restore the core pattern, stop). */
  signal?: AbortSignal;
}

/** The native binaries a bench runs (src/build.ts). */
export type Binaries = NativeBinaries;
export { nativeBinaries };

/** Readiness: no sleeps, conditions with a deadline. */
const PROBE_ATTEMPT_MS = 3_000;
/** perf's sampling rate for --profile: enough samples in 3 s, few enough interrupts on a VM. */
const PROFILE_HZ = 499;
/** Client ids of readiness probes, far from the measuring client's. */
const PROBE_ID_BASE = 900_000;

class TrialError extends Error {}

/** How long a restarted replica may take to say `view V normal` before the trial reports it stuck recovering. */
const RECOVERY_TIMEOUT_MS = 10_000;
/** A scheduled fault that would make more than f replicas faulty waits this long for one to recover, then is skipped. */
const F_LIMIT_WAIT_MS = 5_000;

/** One life of a replica in a trial: each restart is a new process with its own dump file. */
interface Life {
  node: PlanNode;
  incarnation: number;
  rec: ProcessRecord;
  dump: string;
}

/** The replicas of a trial as they are now (one Started per node, replaced on restart), every life they had, and how to start one again. */
interface TrialProcs {
  started: Started[];
  lives: Life[];
  killed: Set<number>;
  restart(s: Started): Promise<Started>;
}

/** Signals whose default action dumps core: the ones that mean "crashed". */
export const CORE_SIGNALS = new Set(['SIGSEGV', 'SIGABRT', 'SIGBUS', 'SIGFPE', 'SIGILL', 'SIGTRAP', 'SIGSYS', 'SIGQUIT', 'SIGXCPU', 'SIGXFSZ']);


/** Where a trial's replicas and client write what the checker reads: the lab's log folder, the same path on every provider. */
function trialFiles(lab: BenchLab, seq: number, clientNode: PlanNode) {
  return {
    dump: (n: PlanNode, incarnation = 0) => incarnationDumpLog(join(lab.paths.nodeLogDir(n.name), `committed.t${seq}.log`), incarnation),
    history: join(lab.paths.nodeLogDir(clientNode.name), `history.t${seq}.jsonl`),
    acks: join(lab.paths.nodeLogDir(clientNode.name), `acks.t${seq}.log`),
  };
}

const delay = (ms: number) => new Promise<void>((ok) => setTimeout(ok, Math.max(0, ms)));

/** Everything one bench run shares between trials. */
class Bench {
  aborted: NodeJS.Signals | undefined;
  readonly results: ResultsFile;
  readonly env: EnvironmentFile;
  private readonly claimedCores = new Set<string>();
  private readonly guestCoresReady = new Set<string>();
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
    const clientNode = clients(lab.plan)[0];
    if (!clientNode) throw new LabError(`lab '${lab.plan.lab}' has no client node`);
    const files = trialFiles(lab, t.seq, clientNode);
    const fault: { rec?: NemesisRecord; killed: Set<number>; heal?: () => Promise<void> } = { killed: new Set() };
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
        if (useBpf) await reattachFastPaths(lab.plan, lab.provider, lab.pctx, s.node.index, arm, 'auto', this.opts.hook ?? 'auto');
        const rec2 = await restartOn(lab.open, s.rec, argvFor(s.node, incarnation), incarnation);
        const next: Started = { node: s.node, rec: rec2, binary: this.replicaBinary };
        started[started.indexOf(s)] = next;
        lives.push({ node: s.node, incarnation, rec: rec2, dump: files.dump(s.node, incarnation) });
        return next;
      },
    };
    try {
      if (useBpf) {
        await attachArm(lab, arm, this.opts.hook);
        const armEnv = (this.env.labs[String(t.replicas)]!.arms[t.arm] ??= {});
        if (!Object.keys(armEnv).length) {
          for (const n of replicas(lab.plan)) armEnv[n.name] = await armNodeState(lab, n);
          this.saveEnv();
        }
      }
      await this.prepareCores(lab);
      // reordering needs the kernel's sch_netem; without it the replicas reorder what they receive
      reorderInReplicas = nemesis.kind === 'reorder' && !(await this.linkReorder(lab));
      if (reorderInReplicas) fault.rec = { name: nemesis.name, kind: nemesis.kind, targets: replicas(lab.plan).map((x) => x.name), problem: undefined };
      const open = lab.open;
      if (arm.floor) {
        // the floor: replica 0's address answers every datagram itself
        const r0 = open.replicas()[0]!;
        started.push(...(await startOn(open, [r0], `echo.t${t.seq}`, this.bins.echo, (node) => withCoreDumps(echoArgv(this.bins.echo, node.ip, node.port)))));
      } else {
        started.push(...(await startOn(open, open.replicas(), `replica.t${t.seq}`, this.replicaBinary, (node) => argvFor(node, 0))));
        for (const s of started) lives.push({ node: s.node, incarnation: 0, rec: s.rec, dump: files.dump(s.node, 0) });
      }
      await this.waitReady(lab, started, clientNode, t, arm.floor === true);
      const argv = withCoreDumps(
        clientArgv(this.bins.client, {
          config: lab.paths.replicaConfigFile,
          ...(this.opts.duration !== undefined ? { duration: this.opts.duration } : { requests: this.opts.requests ?? 1000 }),
          warmup: this.opts.warmup, threads: t.threads,
          ...(arm.floor ? { echo: true } : this.opts.check ? { history: files.history, ackLog: files.acks } : {}),
        }),
      );
      cpuBefore = await this.sampleCpu(lab, started, clientNode);
      const clientStart = performance.now();
      const clientRun = lab.open.node(clientNode).exec(argv, { check: false, timeoutMs: this.opts.timeoutMs });
      const profiling = this.profileFor(t, lab) ? this.recordProfile(t, lab, clientRun) : undefined;
      const rssSampling = this.opts.rssSampleMs && !arm.floor ? this.sampleRss(lab, procs, clientNode, clientRun, this.opts.rssSampleMs) : undefined;
      if (reorderInReplicas) {
        fault.rec!.injectedAt = Date.now();
        fault.rec!.note = 'no sch_netem in this kernel: the replicas reordered what they received (--reorder-rate), for the whole trial';
      } else if (nemesis.kind !== 'none') {
        // a fault that could not be made is on record; the client still runs to its end
        await this.runNemesis(nemesis, t, lab, procs, clientNode, clientRun, fault).catch((e: Error) => {
          fault.rec = { ...(fault.rec ?? { name: nemesis.name, kind: nemesis.kind, targets: [] }), problem: e.message.split('\n').slice(0, 3).join(' | ') };
        });
      }
      client = await clientRun;
      const windowMs = performance.now() - clientStart;
      if (rssSampling) rec.rss = await rssSampling;
      const cpuAfter = await this.sampleCpu(lab, started, clientNode);
      if (profiling) rec.profile = await profiling;
      clientTimedOut = client.signal !== null && client.durationMs >= this.opts.timeoutMs - 50;
      writeFileSync(join(this.nodeDir(clientNode.name), `client.t${t.seq}.log`), client.stdout + (client.stderr ? `\n--- stderr ---\n${client.stderr}` : ''));
      rec.clientExitCode = client.exitCode;
      const parsed = parseClientOutput(client.stdout);
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
      if (this.opts.check && !arm.floor) await this.checkSafety(t, lab, procs, clientNode, rec);
      rec.wallMs = Math.round(performance.now() - t0);
    }
    return rec;
  }

  /**
   * Injects the trial's fault a third into the measured part and heals it at
   * two thirds (nemesisWindow), while the client runs. Targets come from the
   * replicas' own logs (the leader is the one of the highest normal view).
   */
  private async runNemesis(spec: NemesisSpec, t: Trial, lab: BenchLab, procs: TrialProcs, clientNode: PlanNode, clientRun: Promise<RunResult>, fault: { rec?: NemesisRecord; killed: Set<number>; heal?: () => Promise<void> }): Promise<void> {
    const faults = lab.provider.faults;
    const rec: NemesisRecord = { name: spec.name, kind: spec.kind, targets: [] };
    fault.rec = rec;
    if (!faults) {
      rec.problem = `the ${lab.provider.name} provider cannot inject faults`;
      return;
    }
    const started = procs.started;
    const w = nemesisWindow(this.opts.warmup, this.opts.duration);
    const t0 = Date.now();
    let clientDone = false;
    void clientRun.finally(() => (clientDone = true));
    const waitUntil = async (ms: number) => {
      await Promise.race([delay(t0 + ms - Date.now()), clientRun]);
      return !clientDone;
    };
    if (spec.kind === 'kill-restart' || spec.kind === 'random') {
      const restartDelay = this.opts.restartDelayMs ?? DEFAULT_RESTART_DELAY_MS;
      if (spec.kind === 'kill-restart') rec.schedule = killRestartSchedule(spec.target ?? 'leader', w.startMs, restartDelay);
      else {
        // each repeat its own schedule, replayable from the run's seed
        rec.seed = (spec.seed ?? 0) + t.repeat;
        const measuredMs = (this.opts.duration ?? 3) * 1000;
        const kinds: ScheduleKind[] = ['kill', 'kill-restart', 'pause', 'partition', 'loss'];
        rec.schedule = randomSchedule({ seed: rec.seed, n: lab.plan.cluster.n, fromMs: this.opts.warmup * 1000 + 500, untilMs: this.opts.warmup * 1000 + measuredMs - 1500, restartDelayMs: restartDelay, kinds });
      }
      this.runner.note(`nemesis ${spec.name}: schedule ${rec.schedule.map((a) => describeScheduled(a)).join('; ') || '(empty)'}`);
      await this.runSchedule(rec.schedule, lab, procs, clientRun, rec, fault, t0, () => clientDone);
      return;
    }
    if (!(await waitUntil(w.startMs))) {
      rec.problem = 'the client finished before the fault was due';
      return;
    }
    const n = lab.plan.cluster.n;
    const logs = await Promise.all(started.map((s) => this.readNodeFile(lab, s.node, s.rec.logFile)));
    const leader = leaderFromLogs(logs, n);
    const byIndex = (i: number) => started.find((s) => s.node.index === i)!;
    const followers = started.filter((s) => s.node.index !== leader);
    const pick = (target: 'leader' | 'follower' | undefined) => (target === 'follower' ? followers[0]! : byIndex(leader));
    const { pctx, plan } = lab;
    const note = (line: string) => this.runner.note(`nemesis ${spec.name}: ${line}`);
    rec.injectedAt = Date.now();
    switch (spec.kind) {
      case 'kill-leader':
      case 'kill-follower': {
        const victims = spec.kind === 'kill-leader' ? [byIndex(leader)] : followers.slice(0, spec.count ?? 1);
        for (const v of victims) {
          note(`SIGKILL ${v.node.name} (pid ${v.rec.pid})`);
          fault.killed.add(v.rec.pid);
          await faults.signal(plan, v.rec, 'SIGKILL', pctx);
          rec.targets.push(v.node.name);
        }
        break;
      }
      case 'pause': {
        const v = pick(spec.target);
        note(`SIGSTOP ${v.node.name}`);
        await faults.signal(plan, v.rec, 'SIGSTOP', pctx);
        rec.targets.push(v.node.name);
        fault.heal = async () => {
          note(`SIGCONT ${v.node.name}`);
          await faults.signal(plan, v.rec, 'SIGCONT', pctx);
        };
        break;
      }
      case 'partition': {
        const v = pick(spec.target);
        note(`cut ${v.node.name} off the lab network`);
        await faults.isolate(plan, v.node, true, pctx);
        rec.targets.push(v.node.name);
        fault.heal = async () => {
          note(`reconnect ${v.node.name}`);
          await faults.isolate(plan, v.node, false, pctx);
        };
        break;
      }
      case 'split': {
        if (!faults.split) {
          rec.problem = `the ${lab.provider.name} provider cannot split the lab network`;
          return;
        }
        // the old leader with f-1 followers on one side, a quorum and the client on the other
        const f = lab.plan.cluster.f;
        const minority = [byIndex(leader).node, ...followers.slice(0, f - 1).map((x) => x.node)];
        const majority = plan.nodes.filter((x) => !minority.includes(x));
        note(`split into [${majority.map((x) => x.name).join(' ')}] and [${minority.map((x) => x.name).join(' ')}]`);
        await faults.split(plan, [majority, minority], pctx);
        rec.targets.push(...minority.map((x) => x.name));
        fault.heal = async () => {
          note('heal the split');
          await faults.split!(plan, undefined, pctx);
        };
        break;
      }
      case 'loss':
      case 'dup':
      case 'reorder': {
        const p = spec.percent!;
        const netem = spec.kind === 'loss' ? { lossPercent: p } : spec.kind === 'dup' ? { duplicatePercent: p } : { reorderPercent: p };
        note(`netem ${spec.kind} ${p}% on every lab link`);
        for (const x of plan.nodes) await faults.netem(plan, x, netem, pctx);
        rec.targets.push(...plan.nodes.map((x) => x.name));
        fault.heal = async () => {
          note('remove netem');
          for (const x of plan.nodes) await faults.netem(plan, x, undefined, pctx);
        };
        break;
      }
      case 'forge': {
        // lies made for the view the lab is in now (its leader is view mod n)
        const view = highestView(logs);
        const rate = spec.rate ?? DEFAULT_FORGE_RATE;
        const seconds = Math.max(0.1, (w.endMs - w.startMs) / 1000);
        note(`forged replica messages from ${clientNode.name} at every replica for ${seconds} s, ${rate}/s (view ${view}, leader replica${view % n})`);
        const argv = forgeArgv(this.bins.forge, { config: lab.paths.replicaConfigFile, view, seconds, rate, seed: t.seq + 1 });
        const sending = lab.open.node(clientNode).exec(argv, { check: false, timeoutMs: seconds * 1000 + 30_000 });
        rec.targets.push(...started.map((x) => x.node.name));
        fault.heal = async () => {
          const r = await sending;
          const sent = parseForgeOutput(r.stdout);
          if (r.exitCode !== 0 || !sent) throw new Error(`the forge sender exited ${r.exitCode ?? r.signal}: ${(r.stderr.trim().split('\n').at(-1) ?? '') || 'no output'}`);
          rec.forge = sent;
          note(`forge sent ${sent.sent} datagrams (${FORGE_LIES.map((k) => `${k} ${sent.sentByLie[k]}`).join(', ')})`);
        };
        break;
      }
      case 'none':
        break;
    }
    if (!fault.heal) return;
    const heal = fault.heal;
    await waitUntil(w.endMs);
    fault.heal = undefined;
    await heal();
    rec.healedAt = Date.now();
  }

  /**
   * Carries out a schedule of faults (nemesisSchedule.ts) while the client
   * runs: each fault at its time, concurrently, healed (or, for a kill, the
   * replica started again) at its end. A restarted replica stays faulty until
   * its log says it is normal; a fault that would make more than f replicas
   * faulty waits for one to recover, then is skipped, on record. Everything
   * still broken when the client ends is healed by fault.heal.
   */
  private async runSchedule(schedule: ScheduledFault[], lab: BenchLab, procs: TrialProcs, clientRun: Promise<RunResult>, rec: NemesisRecord, fault: { heal?: () => Promise<void> }, t0: number, clientDone: () => boolean): Promise<void> {
    const faults = lab.provider.faults!;
    const { plan, pctx } = lab;
    const f = plan.cluster.f;
    const note = (line: string) => this.runner.note(`nemesis ${rec.name}: ${line}`);
    const faulty = new Set<string>();
    const outstanding = new Map<number, () => Promise<void>>();
    fault.heal = async () => {
      for (const [seq, heal] of [...outstanding]) {
        outstanding.delete(seq);
        await heal();
      }
    };
    const waitUntil = async (ms: number) => {
      await Promise.race([delay(t0 + ms - Date.now()), clientRun]);
      return !clientDone();
    };
    rec.actions = [];
    const one = async (a: ScheduledFault): Promise<void> => {
      const act: ActionRecord = { seq: a.seq, kind: a.kind };
      rec.actions!.push(act);
      if (!(await waitUntil(a.atMs))) {
        act.skipped = 'the client finished first';
        return;
      }
      let victim: Started | undefined;
      if (a.target !== undefined) {
        const logs = typeof a.target === 'number' ? [] : await Promise.all(procs.started.map((x) => logTail(lab.open.node(x.node), x.rec)));
        const leader = typeof a.target === 'number' ? a.target : leaderFromLogs(logs, plan.cluster.n);
        victim = a.target === 'follower' ? procs.started.find((x) => x.node.index !== leader) : procs.started.find((x) => x.node.index === leader);
        if (!victim) {
          act.skipped = `no replica ${String(a.target)}`;
          return;
        }
        act.node = victim.node.name;
        // the f-limit, counting replicas that restarted and have not recovered yet
        const fits = () => faulty.has(victim!.node.name) ? false : faulty.size + 1 <= f;
        if (!fits() && !(await until(async () => fits() || clientDone(), F_LIMIT_WAIT_MS, 50)) || !fits()) {
          act.skipped = `${[...faulty].join(', ') || 'its target'} still faulty: a fault on ${victim.node.name} would exceed f=${f}`;
          note(`skip ${describeScheduled(a)}: ${act.skipped}`);
          return;
        }
        faulty.add(victim.node.name);
        if (!rec.targets.includes(victim.node.name)) rec.targets.push(victim.node.name);
      }
      act.injectedAt = Date.now();
      rec.injectedAt ??= act.injectedAt;
      switch (a.kind) {
        case 'kill':
        case 'kill-restart': {
          const v = victim!;
          note(`SIGKILL ${v.node.name} (pid ${v.rec.pid})`);
          procs.killed.add(v.rec.pid);
          await faults.signal(plan, v.rec, 'SIGKILL', pctx);
          await until(async () => !(await lab.open.node(v.node).alive(v.rec)), 5_000, 20);
          // a restart supervisor's delay, or the replica's time down; the restart happens even when the client has finished, so every replica runs at the end
          await waitUntil(a.endMs);
          note(`restart ${v.node.name}`);
          // the restart line goes into its log after this: only a normal line written since counts
          const restartAt = Date.now();
          const again = await procs.restart(v);
          act.endedAt = restartAt;
          rec.healedAt = act.endedAt;
          note(`${v.node.name} restarted as pid ${again.rec.pid}`);
          const node = lab.open.node(again.node);
          let text = '';
          const recovered = await until(async () => {
            text = await logTail(node, again.rec);
            return normalAfter(text, restartAt) !== undefined || !(await node.alive(again.rec));
          }, RECOVERY_TIMEOUT_MS, 50);
          const at = normalAfter(text, restartAt);
          if (recovered && at !== undefined) {
            act.recoveredAt = Math.round(at);
            act.recoveryMs = Math.max(0, Math.round(at - act.endedAt));
          } else {
            const alive = await node.alive(again.rec);
            act.problem = `restarted at ${new Date(act.endedAt).toISOString()} and not normal ${RECOVERY_TIMEOUT_MS / 1000} s later: ${describeReplicaStatus(replicaStatusFromLog(text), alive)}`;
            note(`${v.node.name}: ${act.problem}`);
          }
          faulty.delete(v.node.name);
          return;
        }
        case 'pause': {
          const v = victim!;
          note(`SIGSTOP ${v.node.name}`);
          await faults.signal(plan, v.rec, 'SIGSTOP', pctx);
          const heal = async () => {
            note(`SIGCONT ${v.node.name}`);
            await faults.signal(plan, v.rec, 'SIGCONT', pctx);
          };
          outstanding.set(a.seq, heal);
          await waitUntil(a.endMs);
          break;
        }
        case 'partition': {
          const v = victim!;
          note(`cut ${v.node.name} off the lab network`);
          await faults.isolate(plan, v.node, true, pctx);
          outstanding.set(a.seq, async () => {
            note(`reconnect ${v.node.name}`);
            await faults.isolate(plan, v.node, false, pctx);
          });
          await waitUntil(a.endMs);
          break;
        }
        case 'loss': {
          note(`netem loss ${a.percent}% on every lab link`);
          for (const x of plan.nodes) await faults.netem(plan, x, { lossPercent: a.percent! }, pctx);
          outstanding.set(a.seq, async () => {
            note('remove netem');
            for (const x of plan.nodes) await faults.netem(plan, x, undefined, pctx);
          });
          await waitUntil(a.endMs);
          break;
        }
      }
      const heal = outstanding.get(a.seq);
      if (heal) {
        outstanding.delete(a.seq);
        await heal();
      }
      act.endedAt = Date.now();
      rec.healedAt = act.endedAt;
      if (victim) faulty.delete(victim.node.name);
    };
    const running = schedule.map((a) => one(a).catch((e: Error) => {
      const act = rec.actions!.find((x) => x.seq === a.seq);
      if (act) act.problem = e.message.split('\n').slice(0, 3).join(' | ');
    }));
    await Promise.all(running);
    rec.actions.sort((x, y) => x.seq - y.seq);
    const recovered = rec.actions.map((x) => x.recoveryMs).filter((x): x is number => x !== undefined);
    if (recovered.length) rec.note = `restarted replicas normal again after ${recovered.join(', ')} ms`;
  }

  /** --rss-sample-ms: every replica's VmRSS, through the node's exec, until the client ends. */
  private async sampleRss(lab: BenchLab, procs: TrialProcs, clientNode: PlanNode, clientRun: Promise<RunResult>, intervalMs: number) {
    const series = new Map<number, RssSeries>();
    const t0 = Date.now();
    let done = false;
    void clientRun.finally(() => (done = true));
    let problem: string | undefined;
    while (!done) {
      const groups: { node: PlanNode; of: Started[] }[] = lab.provider.sharedKernel ? [{ node: clientNode, of: [...procs.started] }] : procs.started.map((x) => ({ node: x.node, of: [x] }));
      for (const g of groups) {
        const r = await lab.provider.exec(lab.plan, g.node, ['sh', '-c', rssSampleScript(g.of.map((x) => x.rec.pid))], lab.pctx, { check: false, timeoutMs: 10_000 }).catch(() => undefined);
        if (!r || r.exitCode !== 0) {
          problem = `sampling on ${g.node.name} failed`;
          continue;
        }
        const kb = parseRssSample(r.stdout);
        for (const x of g.of) {
          const v = kb.get(x.rec.pid);
          if (v === undefined) continue;
          const sr = series.get(x.rec.pid) ?? { node: x.node.name, pid: x.rec.pid, samples: [] };
          sr.samples.push([Date.now() - t0, v]);
          series.set(x.rec.pid, sr);
        }
      }
      await Promise.race([delay(intervalMs), clientRun]);
    }
    const all = [...series.values()];
    return { intervalMs, rule: RSS_RULE, verdicts: all.map(rssVerdict), series: all, ...(problem ? { problem } : {}) };
  }

  /**
   * One CPU sample per kernel the lab runs on: a netns lab's nodes share
   * this host's (one sample with every pid), other labs' nodes have their
   * own (one per node, with that node's process). Undefined when any
   * sample failed: no CPU figures are better than wrong ones.
   */
  private async sampleCpu(lab: BenchLab, started: Started[], clientNode: PlanNode): Promise<CpuSample[] | undefined> {
    const groups: { node: PlanNode; pids: number[] }[] = lab.provider.sharedKernel
      ? [{ node: clientNode, pids: started.map((x) => x.rec.pid) }]
      : [...started.map((x) => ({ node: x.node, pids: [x.rec.pid] })), ...(started.some((x) => x.node === clientNode) ? [] : [{ node: clientNode, pids: [] }])];
    const out: CpuSample[] = [];
    for (const g of groups) {
      const r = await lab.provider.exec(lab.plan, g.node, ['sh', '-c', cpuSampleScript(g.pids)], lab.pctx, { check: false, timeoutMs: 30_000 }).catch(() => undefined);
      const parsed = r && r.exitCode === 0 ? parseCpuSample(r.stdout) : 'the sampling command failed';
      if (typeof parsed === 'string') {
        this.deps.progress.warn(`CPU sample on ${g.node.name}: ${parsed}; this trial has no CPU figures`);
        return undefined;
      }
      out.push(parsed);
    }
    return out;
  }

  private profiled = new Set<string>();
  /** --profile: the first trial of each replica count x arm at the highest thread count, without a nemesis. */
  private profileFor(t: Trial, lab: BenchLab): boolean {
    const key = `${t.replicas}/${t.arm}`;
    if (!this.opts.profile || !lab.provider.sharedKernel || t.nemesis !== 'none' || t.threads !== Math.max(...this.opts.threads) || this.profiled.has(key)) return false;
    this.profiled.add(key);
    return true;
  }

  /** perf record -a -g over the measured part of the client run, then the folded stacks and the flame graph. */
  private async recordProfile(t: Trial, lab: BenchLab, clientRun: Promise<RunResult>): Promise<ProfileRecord> {
    const dir = join(this.run.root, 'profiles');
    mkdirSync(dir, { recursive: true });
    const base = `${t.replicas}r-${t.arm}-${t.threads}t`;
    const rel = { svg: `profiles/${base}.svg`, folded: `profiles/${base}.folded` };
    const data = join(dir, `${base}.perf.data`);
    const fail = (problem: string): ProfileRecord => ({ ...rel, samples: 0, top: [], costs: {}, problem });
    let done = false;
    void clientRun.finally(() => (done = true));
    await Promise.race([delay(this.opts.warmup * 1000), clientRun]);
    if (done) return fail('the client finished within its warm-up: nothing to profile');
    const seconds = this.opts.duration ?? 3;
    const rec = await this.runner.run(['perf', 'record', '-a', '-g', '-F', String(PROFILE_HZ), '-o', data, '--', 'sleep', String(seconds)], { check: false, timeoutMs: (seconds + 60) * 1000 }).catch((e: Error) => ({ exitCode: 127, stdout: '', stderr: e.message }) as RunResult);
    if (rec.exitCode !== 0) return fail(`perf record failed (${rec.stderr.trim().split('\n').at(-1) ?? ''}); install linux-perf`);
    await clientRun.catch(() => undefined);
    const script = await this.runner.run(['perf', 'script', '-i', data], { check: false, bulkStdout: true, timeoutMs: 600_000 });
    if (script.exitCode !== 0) return fail(`perf script failed: ${script.stderr.trim().split('\n').at(-1) ?? ''}`);
    const p = profileFromPerfScript(script.stdout, {
      title: `${t.replicas} replicas, ${t.arm}, ${t.threads} client threads`,
      subtitle: `perf record -a -g -F ${PROFILE_HZ} for ${seconds} s of the measured part (whole machine: the lab's processes, kernel and eBPF), run ${this.run.id}`,
      ...rel,
    });
    writeFileSync(join(this.run.root, rel.svg), p.svgText);
    writeFileSync(join(this.run.root, rel.folded), p.foldedText);
    return p.record;
  }

  private reorderable = new Map<string, boolean>();
  /** Can this lab's links reorder (sch_netem)? Asked once per lab size. */
  private async linkReorder(lab: BenchLab): Promise<boolean> {
    const key = `${lab.plan.lab}/${lab.plan.cluster.n}`;
    if (!this.reorderable.has(key)) this.reorderable.set(key, (await lab.provider.faults?.canReorder(lab.plan, lab.pctx).catch(() => false)) ?? false);
    return this.reorderable.get(key)!;
  }

  /** A node's file as text ('' when it has none): local on netns, copied out of a VM. */
  private async readNodeFile(lab: BenchLab, node: PlanNode, path: string, dest?: string): Promise<string> {
    const local = dest ?? join(this.run.root, '.scratch', node.name, basename(path));
    if (!(await lab.open.node(node).copyOut(path, local).catch(() => false))) return '';
    try {
      return readFileSync(local, 'utf8');
    } catch {
      return '';
    }
  }

  /**
   * The trial's safety verdict: the client's history checked for
   * linearizability, its acknowledged requests against the committed logs of
   * the replicas that survived; the files go into the run folder.
   */
  private async checkSafety(t: Trial, lab: BenchLab, procs: TrialProcs, clientNode: PlanNode, rec: TrialRecord): Promise<void> {
    const files = trialFiles(lab, t.seq, clientNode);
    const { started, lives, killed } = procs;
    const dumps: DumpInput[] = [];
    const crashed = new Set(rec.crashes.map((c) => c.pid));
    for (const l of lives) {
      const text = await this.readNodeFile(lab, l.node, l.dump, join(this.nodeDir(l.node.name), basename(l.dump)));
      // every life's dump counts for agreement; only the replicas still running at the end (not killed, not crashed) for what the lab holds
      const survivor = started.some((s) => s.rec.pid === l.rec.pid) && !killed.has(l.rec.pid) && !crashed.has(l.rec.pid);
      dumps.push({ node: l.node.name, incarnation: l.incarnation, survivor, text });
    }
    const history = await this.readNodeFile(lab, clientNode, files.history, join(this.nodeDir(clientNode.name), basename(files.history)));
    const acks = await this.readNodeFile(lab, clientNode, files.acks, join(this.nodeDir(clientNode.name), basename(files.acks)));
    // the client never ran (a failed start): nothing to judge, and the report says "not checked"
    if (!history && !acks) return;
    rec.safety = analyzeTrial({ ...(history ? { history } : {}), ...(acks ? { acks } : {}), dumps });
    if (rec.fault?.injectedAt) {
      const replicaLogs = started.map((s) => (existsSync(join(this.nodeDir(s.node.name), basename(s.rec.logFile))) ? readFileSync(join(this.nodeDir(s.node.name), basename(s.rec.logFile)), 'utf8') : ''));
      const ms = recoveryMs(replicaLogs, rec.fault.injectedAt);
      if (ms !== undefined) rec.fault.recoveryMs = ms;
    }
    rmSync(join(this.run.root, '.scratch'), { recursive: true, force: true });
  }

  private nodeDir(node: string): string {
    const d = this.run.nodeDir(node);
    mkdirSync(d, { recursive: true });
    return d;
  }

  /** Every replica bound its port, then one request commits end to end (through the provider: host /proc for netns, ssh for VMs). */
  private async waitReady(lab: BenchLab, started: Started[], clientNode: PlanNode, t: Trial, portsOnly = false): Promise<void> {
    const open = lab.open;
    const timeoutMs = lab.provider.startTimeoutMs;
    const bound = await waitBound(open, started, timeoutMs);
    if (bound.dead.length) {
      const why = bound.dead.map((s) => `${s.node.name}: ${lastLogLine(s.rec.logFile)}`).join('; ');
      throw new TrialError(`replica(s) exited during start: ${why}`);
    }
    if (!bound.ok) throw new TrialError(`replicas did not bind their UDP ports within ${timeoutMs / 1000}s (${bound.pending.map((s) => s.node.name).join(', ')})`);
    if (portsOnly) return;
    // keys of its own: what it writes must not show up in the measured client's history
    const c = await waitFirstCommit(open, started, open.node(clientNode), this.bins.client, PROBE_ID_BASE + t.seq * 64, timeoutMs, PROBE_ATTEMPT_MS);
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
    for (const s of started) if (!killed.has(s.rec.pid) && !(await lab.open.node(s.node).alive(s.rec))) deadEarly.push(s);
    for (const s of deadEarly) {
      await this.pullLog(lab, s);
      // where the core is depends on the provider: this host's cores folder, or inside a VM (gdb runs there)
      const found = await lab.open.node(s.node).findCore(s.rec, s.binary, this.run.coresDir);
      const core = found.core;
      if (core) this.claimedCores.add(core.path);
      // with or without a core: the folder keeps its log tail and the eBPF state
      crashes.push(await captureCrash({
        run: this.run, runner: this.runner, node: s.node.name, process: basename(s.binary), pid: s.rec.pid, binary: s.binary, logFile: s.rec.logFile, core, bpfState: bpfState(s.node),
        collect: (dir) => lab.open.node(s.node).collect(dir),
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
    await stopAll(lab.open, started.map((s) => s.rec));
    for (const s of started) {
      if (deadEarly.includes(s) || killed.has(s.rec.pid)) continue;
      const core = listCores(this.run.coresDir).find((c) => c.pid === s.rec.pid);
      if (core) {
        this.claimedCores.add(core.path);
        crashes.push(await captureCrash({ run: this.run, runner: this.runner, node: s.node.name, process: basename(s.binary), pid: s.rec.pid, binary: s.binary, logFile: s.rec.logFile, core, bpfState: bpfState(s.node), collect: (dir) => lab.open.node(s.node).collect(dir) }));
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
    if (rec.fault?.forge) this.countForgeDrops(rec.fault.forge, started);
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

  /** forge: what the replicas' exit lines counted as dropped (their logs are on this host by now). */
  private countForgeDrops(forge: ForgeRecord, started: Started[]): void {
    const stats: Record<string, Record<string, number> | undefined> = {};
    for (const s of started) stats[s.node.name] = existsSync(s.rec.logFile) ? exitStats(readFileSync(s.rec.logFile, 'utf8')) : undefined;
    Object.assign(forge, forgeDrops(stats));
    this.runner.note(`nemesis forge: the replicas dropped ${forge.dropped} (${Object.entries(forge.droppedBy ?? {}).map(([k, v]) => `${k} ${v}`).join(', ')})${forge.uncounted ? `; no exit counters from ${forge.uncounted.join(', ')}` : ''}`);
  }

  private coresReady = new Set<string>();
  /** Where the nodes' kernels write cores, once per lab size (a provider hook: VMs set their own core_pattern). */
  private async prepareCores(lab: BenchLab): Promise<void> {
    const key = `${lab.plan.lab}/${lab.plan.cluster.n}`;
    if (this.coresReady.has(key)) return;
    await lab.open.prepareCores();
    this.coresReady.add(key);
  }

  /** The process log at the same path on this host (a VM keeps it in the guest), so crash folders and the run folder have it. */
  private async pullLog(lab: BenchLab, s: Started): Promise<void> {
    await lab.open.node(s.node).copyOut(s.rec.logFile, s.rec.logFile, 4_000_000).catch(() => false);
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

export interface BenchOutcome {
  run: RunPaths;
  results: ResultsFile;
  report: string;
}

/** Checks everything that does not need the lab; returns the arms to run and the ones skipped. */
export function plannedArms(opts: BenchOptions, root = projectRoot()): { run: ArmName[]; skipped: { arm: ArmName; reason: string }[] } {
  const bpfProblem = fastPathsUnavailable(root);
  const run: ArmName[] = [];
  const skipped: { arm: ArmName; reason: string }[] = [];
  for (const a of opts.arms) {
    if (armUsesBpf(ARMS[a]) && bpfProblem) skipped.push({ arm: a, reason: `arm '${a}' ${bpfProblem}` });
    else run.push(a);
  }
  return { run, skipped };
}

export async function runBench(given: BenchOptions, deps: BenchDeps): Promise<BenchOutcome> {
  const opts: BenchOptions & { nemesis: NemesisSpec[]; check: boolean } = { ...given, nemesis: given.nemesis?.length ? given.nemesis : [NO_NEMESIS], check: given.check ?? true };
  const bins = nativeBinaries();
  const missing = Object.values(bins).filter((b) => !existsSync(b));
  if (missing.length) throw new LabError(`${missing.join(' and ')} missing; build them with \`make -C native\` (or \`npm run build\`)`, 'BENCH_NO_BINARIES');
  const arms = plannedArms(opts);
  if (!arms.run.length) throw new LabError(`no arm can run: ${arms.skipped.map((s) => s.reason).join('; ')}`, 'BENCH_NO_ARMS');
  // a nemesis that cannot hit these labs is refused before anything runs
  const providerName = loadPlan(new LabPaths(deps.home, opts.lab))?.provider ?? deps.labSpec?.provider ?? 'netns';
  const provider = deps.getProvider(providerName);
  const nemesisBad = opts.nemesis.flatMap((spec) =>
    opts.replicas.flatMap((n) => nemesisProblems(spec, n, provider.faults?.split !== undefined).map((message) => ({ code: 'BENCH_NEMESIS', subject: `--nemesis ${spec.name}`, message, hint: 'pick faults this lab can survive and this provider can make' }))),
  );
  if (opts.nemesis.some((x) => x.kind !== 'none') && !provider.faults) nemesisBad.push({ code: 'BENCH_NEMESIS', subject: '--nemesis', message: `the ${providerName} provider cannot inject faults`, hint: 'use the netns or vagrant provider' });
  if (opts.profile && !provider.sharedKernel) nemesisBad.push({ code: 'BENCH_PROFILE', subject: '--profile', message: `the ${providerName} provider's nodes run their own kernels: one perf on this host cannot see them`, hint: 'profile a netns lab, or run perf inside a node: electrode-lab exec replica0 -- perf record -a -g -- sleep 3' });
  if (nemesisBad.length) throw new DiagnosticsError(nemesisBad, 'input');
  for (const s of arms.skipped) deps.progress.warn(`skipping ${s.reason}`);
  const { progress } = deps;

  const run = newRunPaths(opts.lab, deps.env);
  const runner = new LoggingRunner(deps.runner, run.commandsLog);
  // the negative control runs the lab build, built here like the crash hunt's (make -C native lab-faults)
  const replicaBinary = opts.unsafeNoRecovery ? await progress.step('build the lab replica for --unsafe-no-recovery (make -C native lab-faults)', () => buildLabFaultsReplica(runner)) : bins.replica;
  if (opts.unsafeNoRecovery) progress.warn('--unsafe-no-recovery: UNSAFE, lab only: every replica starts and restarts without recovery (--lab-no-recovery); this run is a negative control, its figures are no result');
  const bench = new Bench({ ...opts, arms: arms.run }, deps, run, runner, bins, replicaBinary);
  bench.results.skipped = arms.skipped;
  writeFileSync(run.specFile, JSON.stringify({ options: opts, labSpec: deps.labSpec ?? {} }, null, 2) + '\n');
  progress.info(`bench run ${run.id}: ${run.root}`);
  const trials = schedule({ replicas: opts.replicas, arms: arms.run, threads: opts.threads, repeat: opts.repeat, nemesis: opts.nemesis.map((n) => n.name), ...(opts.impls ? { impls: opts.impls } : {}) });
  // --- upstream hook (src/upstream/bench.ts): the user's Electrode tree, trial by trial next to ours
  const upstream = opts.impls?.includes('upstream') ? new UpstreamBench(opts.electrodeTree ?? UpstreamBench.treeOf({ paths: new LabPaths(deps.home, opts.lab) }) ?? '', progress) : undefined;

  const guard = await guardRunCores(run, { waitMs: deps.coreLockWaitMs ?? 0, log: (l) => runner.note(l) });
  // after the wait: another bench of the same lab may have been using it until now
  const labs = new LabControl(opts.lab, { home: deps.home, env: deps.env, runner, progress, getProvider: deps.getProvider, ...(deps.signal ? { signal: deps.signal } : {}) }, deps.labSpec ?? {});
  const onAbort = () => {
    guard.restore();
    bench.aborted = abortedBy(deps.signal);
    progress.warn(`${bench.aborted}: core_pattern restored; stopping after the current trial (again to kill now)`);
  };
  if (deps.signal?.aborted) onAbort();
  deps.signal?.addEventListener('abort', onAbort, { once: true });
  let current: BenchLab | undefined;
  try {
    bench.env.host = await hostEnvironment(runner, guard.pattern);
    bench.saveEnv();
    bench.save();
    let done = 0;
    outer: for (const n of opts.replicas) {
      if (bench.aborted) break;
      current = await labs.atSize(n);
      await refuseKernelDrift(current);
      await upstream?.forLab(current); // upstream hook
      writeFileSync(run.planFile, JSON.stringify(current.plan, null, 2) + '\n');
      const nodesEnv: EnvironmentFile['labs'][string]['nodes'] = {};
      for (const node of current.plan.nodes) nodesEnv[node.name] = await nodeEnvironment(current, node);
      bench.env.labs[String(n)] = { plan: current.plan, nodes: nodesEnv, arms: {} };
      bench.saveEnv();
      for (const t of trials.filter((x) => x.replicas === n)) {
        if (bench.aborted) break outer;
        done++;
        const title = `[${done}/${trials.length}] ${n} replicas · ${t.arm} · ${t.threads} thread${t.threads === 1 ? '' : 's'} · repeat ${t.repeat + 1}/${opts.repeat}`;
        const rec = await progress.step(title + (t.impl ? ` · ${t.impl}` : '') + (t.nemesis !== 'none' ? ` · nemesis ${t.nemesis}` : ''), () => (t.impl === 'upstream' ? upstream!.trial(t, run, opts) : bench.trial(t, current!))); // upstream hook
        bench.results.records.push(rec);
        if (rec.safety && !isSafe(rec.safety)) {
          bench.results.unsafe = (bench.results.unsafe ?? 0) + 1;
          progress.warn(`SAFETY: ${rec.safety.divergence ?? ''}${rec.safety.lostAcked ? ` ${rec.safety.lostAcked} acknowledged request(s) lost (e.g. ${rec.safety.lostExamples.join(', ')})` : ''}${rec.safety.verdict === 'not-linearizable' ? `\n${rec.safety.failure ?? ''}` : ''}`);
        }
        bench.save();
        progress.info(`    ${describeTrial(rec)}`);
        for (const c of rec.crashes) progress.warn(`crash: ${c.node} ${c.signal ?? 'died'} in ${c.topFrames.slice(0, 3).join(' <- ') || '?'} -> ${join(run.root, c.dir)}`);
        if (rec.crashed && opts.stopOnCrash) {
          bench.results.outcome = 'stopped';
          progress.warn('--stop-on-crash: stopping the bench');
          break outer;
        }
      }
    }
    if (bench.results.outcome === 'running') bench.results.outcome = bench.aborted ? 'interrupted' : 'complete';
  } catch (e) {
    bench.results.outcome = bench.aborted ? 'interrupted' : 'failed';
    bench.results.error = (e as Error).message;
    throw e;
  } finally {
    deps.signal?.removeEventListener('abort', onAbort);
    // machines that are not the lab's own get their core_pattern back first (hosts)
    if (current) await current.open.restoreCores().catch((e: Error) => progress.warn(`restoring the nodes' core_pattern: ${e.message}`));
    guard.restore();
    bench.results.finishedAt = new Date().toISOString();
    try {
      if (!opts.keepLab && !labs.wasUp) await labs.down();
      else if (current) progress.info(`lab '${opts.lab}' left up with ${current.plan.cluster.n} replicas${labs.wasUp ? ' (it was up before the bench)' : ' (--keep-lab)'}`);
    } finally {
      bench.save();
      guard.dispose();
      // cores nobody claimed (e.g. a crash after the last check) are kept and listed
      const stray = listCores(run.coresDir);
      if (stray.length) progress.warn(`unclaimed cores in ${run.coresDir}: ${stray.map((c) => basename(c.path)).join(', ')}`);
    }
  }
  return { run, results: bench.results, report: renderReport(bench.results, run.root) };
}

export function describeTrial(r: TrialRecord): string {
  const figs = r.throughput_ops !== null && r.latency_us ? `${Math.round(r.throughput_ops)} ops/s, p50 ${r.latency_us.p50} us, p99 ${r.latency_us.p99} us, ${r.completed} ok, ${r.errors + r.timeouts} errors/timeouts` : 'no figures';
  const s = r.safety;
  const safety = s ? `; ${s.verdict}${s.lostAcked ? `, ${s.lostAcked} acked LOST` : ''}${s.divergence ? ', DIVERGED' : ''} (${s.ops} ops checked)` : '';
  const fault = r.fault ? `; ${r.fault.name} on ${r.fault.targets.join(',') || '-'}${r.fault.recoveryMs !== undefined ? `, leader back after ${r.fault.recoveryMs} ms` : ''}${r.fault.problem ? ` (${r.fault.problem})` : ''}` : '';
  const restarts = r.fault?.actions?.filter((a) => a.recoveryMs !== undefined).map((a) => `${a.node} normal ${a.recoveryMs} ms after its restart`) ?? [];
  const rss = r.rss ? `; RSS ${r.rss.verdicts.map((v) => `${v.node} ${v.growthPercent ?? '?'}%`).join(', ')}` : '';
  return `${r.unsafeNoRecovery ? 'UNSAFE (no recovery) ' : ''}${r.status}: ${figs}${safety}${fault}${restarts.length ? `; ${restarts.join(', ')}` : ''}${rss}${r.partial ? ' (partial output)' : ''}${r.error ? ` - ${r.error}` : ''}`;
}

/** Refuse to measure nodes whose kernel drifted from the lab's pin (a provider hook: VMs check `uname -r`). */
async function refuseKernelDrift(lab: BenchLab): Promise<void> {
  const drift = await lab.open.kernelDrift();
  if (drift.length) {
    throw new LabError(
      `refusing to bench: ${drift.map((c) => `${c.node} runs ${c.actual}, the lab pins ${c.expected}`).join('; ')}; run \`electrode-lab down\` and \`electrode-lab up\` to reinstall the pinned kernel`,
      'BENCH_KERNEL_DRIFT',
    );
  }
}
