/**
 * Running upstream Electrode on a lab that is up: the narrow interface the
 * CLI (`up --electrode-tree`, `upstream start|stop`) and the bench use.
 *
 *   prepare(variant)      copy/patch/build (cached per variant)
 *   start(variant)        per replica: stale state away, the loader (if the
 *                         variant has fast paths) until its TC filter is on,
 *                         then the replica; all inside the node's network and
 *                         mount namespaces, under prlimit --core=unlimited
 *   waitReady(started)    every replica bound its port (or one died)
 *   probe()               one request commits (upstream's client, -n 1)
 *   client(load)          upstream's own client on client0, parsed
 *   dead(started)         which of them died
 *   capture(run, s)       a crash folder like ours, plus why (explain.ts)
 *   stop(started)         replicas, then loaders (SIGTERM: they detach and unpin)
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CrashInfo, captureCrash, waitForCore, withCoreDumps } from '../edges/crash.js';
import { LabError } from '../core/diagnostics.js';
import { RunPaths } from '../edges/paths.js';
import { PlanNode, clients, replicas } from '../core/plan.js';
import { until } from '../edges/proc.js';
import { LabNode, OpenLab } from '../providers/lab.js';
import { Started, deadOnes, waitBound } from '../lab/replicas.js';
import { RunResult } from '../edges/runner.js';
import type { ProcessRecord } from '../edges/state.js';
import { loaderArgv, staleStateArgvs } from './commands.js';
import { CrashFacts, explainUpstreamCrash } from './explain.js';
import { createNodeMounts, upstreamBpfState } from './nodes.js';
import { ParsedUpstreamClient, parseUpstreamClient } from './client.js';
import { kernelPorts, UPSTREAM_PIN_DIR, UPSTREAM_PINS } from './patch.js';
import { scenarioFacts } from './scenario.js';
import { PreparedVariant, UpstreamLabState, UpstreamPaths, binariesOf, prepareVariant, saveUpstreamState } from './tree.js';
import { UpstreamVariant, hostsFileText, replicaPorts, scenarioHosts } from './variant.js';

/** The lab upstream runs in: the one handle (src/providers/lab.ts), the same the bench has. */
export type UpstreamLabHandle = OpenLab;

export type UpstreamProc = 'upstream-fast' | 'upstream-replica';

export interface StartedProc extends Started {
  kind: UpstreamProc;
  /** The UDP port a replica binds (upstream's one port, or the scenario's config line). */
  port?: number;
}

export interface StartResult {
  started: StartedProc[];
  /** Set when a loader died or never attached: the replicas were not started. */
  problem?: string;
}

export interface ClientLoad {
  requests: number;
  threads: number;
  warmupSec: number;
  timeoutMs: number;
}

export interface ClientOutcome {
  run: RunResult;
  parsed: ParsedUpstreamClient;
  timedOut: boolean;
}

const LOADER_ATTACH_MS = 30_000;
const PROBE_MS = 4_000;

export class UpstreamCluster {
  readonly up: UpstreamPaths;
  readonly open: OpenLab;
  constructor(readonly lab: UpstreamLabHandle, readonly state: UpstreamLabState) {
    this.up = new UpstreamPaths(lab.paths);
    this.open = lab;
  }

  /** The nodes that run upstream processes: every replica and the first client. */
  nodes(): PlanNode[] {
    return [...replicas(this.lab.plan), ...clients(this.lab.plan).slice(0, 1)];
  }

  private scenario() {
    return this.state.scenario ? scenarioFacts(this.state.scenario.files) : undefined;
  }

  /** Each node's mount namespace: own (or the shared) bpffs; a scenario run as it was also gets its container names. */
  async ensureNodes(v: UpstreamVariant): Promise<void> {
    const facts = this.scenario();
    let hostsFile: string | undefined;
    if (v.values === 'scenario' && facts) {
      hostsFile = this.up.hostsFile();
      writeFileSync(hostsFile, hostsFileText(scenarioHosts(this.lab.plan, facts)));
    }
    await createNodeMounts(this.lab, this.nodes().map((n) => this.node(n)), { sharedBpffs: this.state.sharedBpffs, ...(hostsFile ? { hostsFile } : {}) });
  }

  async prepare(v: UpstreamVariant): Promise<PreparedVariant> {
    const p = await prepareVariant(this.lab.runner, this.up, this.state.source.buildDigest ?? this.state.source.digest, this.lab.plan, v, this.state.scenario?.files);
    this.state.variants[v.id] = { dir: p.dir, patch: join(p.dir, 'patch.diff'), edits: p.edits, userBuild: p.userBuild };
    saveUpstreamState(this.up, this.state);
    return p;
  }

  private node(n: PlanNode): LabNode {
    return this.open.node(n);
  }

  /** Runs inside the node's network and own mount namespaces (both the provider's; what is mounted: nodes.ts). */
  private async exec(node: PlanNode, argv: string[], cwd?: string, timeoutMs = 30_000): Promise<RunResult> {
    const n = this.node(node);
    return n.exec(n.inOwnMounts(argv, cwd), { check: false, timeoutMs });
  }

  private async spawn(node: PlanNode, name: string, argv: string[], cwd: string): Promise<ProcessRecord> {
    const n = this.node(node);
    return n.spawn(name, n.inOwnMounts(withCoreDumps(argv), cwd));
  }

  async alive(s: StartedProc): Promise<boolean> {
    return this.node(s.node).alive(s.rec);
  }

  async dead(started: StartedProc[]): Promise<StartedProc[]> {
    return (await deadOnes(this.open, started)) as StartedProc[];
  }

  /** The ports the replicas of a variant bind (the scenario's config.txt, or the one upstream port of the plan). */
  ports(v: UpstreamVariant): number[] {
    return replicaPorts(this.lab.plan, v, this.scenario());
  }

  /**
   * Loaders (when the variant has fast paths), then replicas. `suffix`
   * names the processes apart per bench trial (`.t3`).
   */
  async start(v: UpstreamVariant, prep: PreparedVariant, suffix = ''): Promise<StartResult> {
    const { plan } = this.lab;
    const reps = replicas(plan);
    const started: StartedProc[] = [];
    const bins = binariesOf(this.up, this.state.source.buildDigest ?? this.state.source.digest, v);
    // what a killed loader left (pins, XDP, clsact) would make the next one abort
    for (const n of reps) {
      for (const argv of staleStateArgvs(n.ifname, UPSTREAM_PIN_DIR)) await this.exec(n, argv);
    }
    if (v.loader) {
      const loader = loaderArgv(prep.dir, 'x')[0]!;
      for (const n of reps) {
        // the loader's stdout is a file: line-buffer it so log.tail has its last words
        const rec = await this.spawn(n, `upstream-fast${suffix}`, ['stdbuf', '-oL', '-eL', ...loaderArgv(prep.dir, n.ifname)], prep.dir);
        const s: StartedProc = { node: n, rec, kind: 'upstream-fast', binary: loader };
        started.push(s);
        let gone = false;
        const on = await until(async () => {
          if (!(await this.alive(s))) return (gone = true);
          return /FastBroadCast/.test((await this.exec(n, ['tc', 'filter', 'show', 'dev', n.ifname, 'egress'])).stdout);
        }, LOADER_ATTACH_MS, 50);
        if (gone || !on) {
          const tail = existsSync(rec.logFile) ? readFileSync(rec.logFile, 'utf8').trim().split('\n').slice(-8).join('\n') : '';
          return { started, problem: `${n.name}: upstream's loader ${gone ? 'exited' : `did not attach its TC program within ${LOADER_ATTACH_MS / 1000} s`} (${rec.logFile}):\n${tail}` };
        }
        // upstream's programs are native XDP: a follower's XDP_TX reply lands on the switch-side veth,
        // which drops it without an XDP program of its own (the provider's afterAttach hook for the xdp hook)
        await this.node(n).afterAttach('xdp');
      }
    }
    const ports = this.ports(v);
    for (const n of reps) {
      const rec = await this.spawn(n, `upstream-replica${suffix}`, [bins.replica, '-c', 'config.txt', '-m', 'vr', '-i', String(n.index)], prep.dir);
      started.push({ node: n, rec, kind: 'upstream-replica', binary: bins.replica, port: ports[n.index] ?? 0 });
    }
    return { started };
  }

  /** Every replica bound its UDP port; a problem when one died or the deadline passed. */
  async waitReady(started: StartedProc[], timeoutMs = this.lab.startTimeoutMs): Promise<string | undefined> {
    // a loader binds no port: the replicas are waited for, the loaders only asked whether they still run
    const b = await waitBound(this.open, started.filter((s) => s.kind === 'upstream-replica'), timeoutMs, (s) => (s as StartedProc).port ?? 0);
    const dead = [...(b.dead as StartedProc[]), ...(await this.dead(started.filter((s) => s.kind === 'upstream-fast')))];
    if (dead.length) return `exited during start: ${dead.map((s) => `${s.node.name} ${s.kind} (${s.rec.logFile})`).join(', ')}`;
    const pending = b.pending as StartedProc[];
    if (pending.length) return `did not bind their UDP ports within ${timeoutMs / 1000} s: ${pending.map((s) => `${s.node.name}:${s.port}`).join(', ')}`;
    return undefined;
  }

  /** Upstream's client has no timeout of its own: a probe is one request under ours. */
  async probe(prep: PreparedVariant, started: StartedProc[], timeoutMs = this.lab.startTimeoutMs): Promise<string | undefined> {
    const client = clients(this.lab.plan)[0];
    if (!client) throw new LabError(`lab '${this.lab.plan.lab}' has no client node`, 'NO_CLIENT');
    const bin = join(prep.userBuild, 'bench', 'client');
    const deadline = Date.now() + timeoutMs;
    let last: RunResult | undefined;
    while (Date.now() < deadline) {
      last = await this.exec(client, [bin, '-c', 'config.txt', '-m', 'vr', '-n', '1'], prep.dir, PROBE_MS);
      if (last.exitCode === 0 && /Completed 1 requests/.test(last.stdout + last.stderr)) return undefined;
      if ((await this.dead(started)).length) return `a process died before the first request committed: ${(await this.dead(started)).map((s) => s.node.name).join(', ')}`;
    }
    return `no request committed within ${timeoutMs / 1000} s (last probe: ${last ? (last.signal ?? `exit ${last.exitCode}`) : 'none'})`;
  }

  /** Upstream's client on client0; `abort` ends it early (its result then has the signal). */
  async client(prep: PreparedVariant, load: ClientLoad, abort?: AbortSignal): Promise<ClientOutcome> {
    const client = clients(this.lab.plan)[0];
    if (!client) throw new LabError(`lab '${this.lab.plan.lab}' has no client node`, 'NO_CLIENT');
    const bin = join(prep.userBuild, 'bench', 'client');
    const argv = withCoreDumps([bin, '-c', 'config.txt', '-m', 'vr', '-n', String(load.requests), '-t', String(load.threads), '-w', String(load.warmupSec)]);
    const run = await this.node(client).exec(this.node(client).inOwnMounts(argv, prep.dir), { check: false, timeoutMs: load.timeoutMs, ...(abort ? { signal: abort } : {}) });
    const timedOut = run.signal !== null && run.durationMs >= load.timeoutMs - 50;
    return { run, parsed: parseUpstreamClient(run.stdout + '\n' + run.stderr, load.threads, load.warmupSec), timedOut };
  }

  /** A crash folder for a dead upstream process (core, gdb, log tail, pins, kernel log) and why it died. */
  async capture(run: RunPaths, s: StartedProc, v: UpstreamVariant, prep: PreparedVariant): Promise<CrashInfo> {
    const { runner: labRunner } = this.lab;
    // through the seam: on netns the core is in the run's cores/ already (written from the node's mount namespace, same filesystem)
    const node = this.node(s.node);
    const found = await node.findCore(s.rec, s.binary, run.coresDir);
    const core = found.core ?? (await waitForCore(run.coresDir, s.rec.pid, 2000));
    const info = await captureCrash({
      run, runner: labRunner, node: s.node.name, process: s.kind, pid: s.rec.pid, binary: s.binary, logFile: s.rec.logFile, core,
      ...(found.backtraceText !== undefined ? { backtraceText: found.backtraceText } : {}),
      ...(found.coreNote ? { coreNote: found.coreNote } : {}),
      bpfState: () => upstreamBpfState(this.lab, s.node, this.state.sharedBpffs),
      collect: (dir) => node.collect(dir),
    });
    const dir = join(run.root, info.dir);
    const rd = (f: string) => (existsSync(join(dir, f)) ? readFileSync(join(dir, f), 'utf8') : '');
    const facts: CrashFacts = {
      process: s.kind, signal: info.signal, topFrames: info.topFrames, logTail: rd('log.tail'), backtrace: rd('backtrace.txt'), values: v.values,
      kernPorts: kernelPorts(readFileSync(join(prep.dir, 'xdp-handler', 'fast_kern.c'), 'utf8')), replicaPorts: this.ports(v), sharedBpffs: this.state.sharedBpffs,
    };
    const explanation = explainUpstreamCrash(facts);
    const out: CrashInfo = { ...info, explanation };
    writeFileSync(join(dir, 'explain.txt'), explanation.join('\n') + '\n');
    const json = JSON.parse(rd('crash.json') || '{}') as Record<string, unknown>;
    writeFileSync(join(dir, 'crash.json'), JSON.stringify({ ...json, explanation, variant: v.id, patch: join(prep.dir, 'patch.diff') }, null, 2) + '\n');
    return out;
  }

  /** Replicas first (SIGTERM), then loaders (SIGTERM: they detach XDP and TC and unpin). */
  async stop(started: StartedProc[]): Promise<void> {
    for (const s of started.filter((x) => x.kind === 'upstream-replica')) await this.node(s.node).stop(s.rec);
    for (const s of started.filter((x) => x.kind === 'upstream-fast')) await this.node(s.node).stop(s.rec);
    if (started.some((x) => x.kind === 'upstream-fast')) for (const n of this.open.replicas()) await n.afterDetach().catch(() => undefined);
  }
}

/** The pins a running node should have with this variant (status compares). */
export function expectedPins(v: UpstreamVariant): string[] {
  return v.loader ? [...UPSTREAM_PINS] : [];
}
