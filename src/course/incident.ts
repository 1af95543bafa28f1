/**
 * The crash hunt's incident (labs/05-crash-hunt): on a lab that is up, plant
 * the seed's fault, attach every fast path, start the lab build of the
 * replica, put load on the cluster, kill the leader's machine (SIGKILL),
 * load it again, then take a core of one survivor with SIGABRT as an
 * on-call engineer would. Every process that died from a signal (other than
 * our SIGKILL) gets a crash folder in a run folder like a bench's; the lab
 * is left up, survivors running, fast paths attached, for `stats` and
 * `status`.
 *
 * Nothing names the fault: the planted peer table is a temporary file gone
 * before the replicas start, the replicas' arguments are those of a normal
 * `start --all` plus the seed, and no commands.log is written.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LabError } from '../core/diagnostics.js';
import { ALL_FAST_PATHS, attachFastPaths, bpfState, fastPathNames, loaderPath } from '../lab/bpf.js';
import { buildLabFaultsReplica, labFaultsReplica, nativeBinaries } from '../edges/build.js';
import { parseClientOutput } from '../bench/clientOutput.js';
import { guardRunCores, newRunPaths, saveResults } from '../bench/store.js';
import { CrashInfo, ResultsFile, TrialRecord } from '../bench/types.js';
import { captureCrash, waitForCore, withCoreDumps } from '../edges/crash.js';
import { RunPaths, projectRoot } from '../edges/paths.js';
import { clients, replicas } from '../core/plan.js';
import { until } from '../edges/proc.js';
import { Progress } from '../providers/provider.js';
import { Runner } from '../edges/runner.js';
import { CrashHuntFault, attachOrder, faultOf, labSeedArg, plantedPeerTable } from './crashhunt.js';
import { startHow } from './logs.js';
import { markRunStart } from './runmark.js';
import type { OpenLab } from '../providers/lab.js';
import { Started, startOn, waitBound } from '../lab/replicas.js';
import { clientArgv, replicaArgv } from '../core/argv.js';

/** The lab build of the replica: the only binary with the planted faults. */
export function labReplicaBinary(root = projectRoot()): string {
  return labFaultsReplica(root);
}

export interface IncidentDeps {
  env: NodeJS.ProcessEnv;
  runner: Runner;
  progress: Progress;
  /** The crash-hunt lab, through the one handle (src/providers/lab.ts). */
  lab: OpenLab;
  /** Wait this long for another process's core capture (ELECTRODE_LAB_CORE_WAIT_S). */
  coreLockWaitMs?: number;
}

export interface IncidentResult {
  run: RunPaths;
  crashes: CrashInfo[];
}

const LOAD_1_S = 2;
const LOAD_2_S = 3;
const THREADS = 2;


/** Builds the lab replica (incremental; the normal build never contains it). */
export function buildLabReplica(runner: Runner, root = projectRoot()): Promise<string> {
  return buildLabFaultsReplica(runner, root);
}

/** Attaches every fast path the way the fault needs (its peer table, its pin folders, its order). */
async function plantAndAttach(fault: CrashHuntFault, d: IncidentDeps): Promise<void> {
  const { lab, runner } = d;
  const { plan } = lab;
  const reps = replicas(plan);
  if (fault === 'shared-pins') {
    // one pin folder for every node, as when containers share the host's /sys/fs/bpf
    const first = reps[0]!.pinDir;
    for (const n of reps.slice(1)) await runner.run(['sh', '-c', 'rm -rf "$1" && ln -s "$2" "$1"', 'sh', n.pinDir, first]);
  }
  const tmp = mkdtempSync(join(tmpdir(), 'el-lab-'));
  const peers = join(tmp, 'peers.table');
  try {
    writeFileSync(peers, plantedPeerTable(plan, fault));
    await attachFastPaths(lab, ALL_FAST_PATHS, 'auto', 'auto', { peers, order: attachOrder(plan, fault) });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function trialRecord(seq: number, stdout: string, exitCode: number | null, wallMs: number, startedAt: string, n: number): TrialRecord {
  const p = parseClientOutput(stdout).result;
  return {
    seq, replicas: n, arm: 'all', threads: THREADS, repeat: seq, nemesis: seq === 0 ? 'none' : 'kill-leader',
    status: p && p.completed > 0 && exitCode === 0 ? 'ok' : 'failed', crashed: false, startedAt, wallMs,
    requests: p?.requests ?? 0, completed: p?.completed ?? 0, errors: p?.errors ?? 0, timeouts: p?.timeouts ?? 0,
    duration_s: p?.duration_s ?? 0, throughput_ops: p?.throughput_ops ?? null, latency_us: p?.latency_us ?? null,
    clientExitCode: exitCode, crashes: [],
    ...(seq === 1 ? { fault: { name: 'kill-leader', kind: 'kill-leader' as const, targets: ['replica0'] } } : {}),
  };
}

export async function runIncident(seed: string, d: IncidentDeps): Promise<IncidentResult> {
  const { lab, runner, progress } = d;
  const { plan, paths } = lab;
  const fault = faultOf(seed, plan.lab);
  const bins = nativeBinaries();
  if (!existsSync(bins.client) || !existsSync(loaderPath())) throw new LabError('the client or the eBPF loader is missing; run `npm run build`', 'NOT_BUILT');
  const labBin = await progress.step('build the lab replica (make -C native lab-faults)', () => buildLabReplica(runner));
  await progress.step(`attach ${fastPathNames(ALL_FAST_PATHS)} on ${plan.cluster.n} replicas`, () => plantAndAttach(fault, d));

  const run = newRunPaths(plan.lab, d.env);
  const guard = await guardRunCores(run, { waitMs: d.coreLockWaitMs ?? 0 });
  const crashes: CrashInfo[] = [];
  const records: TrialRecord[] = [];
  try {
    await markRunStart(lab, startHow({ fastPaths: fastPathNames(ALL_FAST_PATHS), xdp: 'auto', log: 'info' }));
    const started = await startOn(lab, lab.replicas(), 'replica', labBin, (node) =>
      withCoreDumps(replicaArgv(labBin, { config: paths.replicaConfigFile, index: node.index, pinDir: node.pinDir, fast: ALL_FAST_PATHS, extra: ['--lab-seed', labSeedArg(seed, plan.lab)] })),
    );
    const alive = async (s: Started) => lab.node(s.node).alive(s.rec);
    const bound = await progress.step(`wait for ${started.length} replicas to bind their ports`, () => waitBound(lab, started));
    if (!bound.ok) throw new LabError(`the replicas did not start (see ${paths.logsDir})`, 'START_FAILED');

    const client = clients(plan)[0]!;
    const load = async (seq: number, seconds: number) => {
      const t0 = performance.now();
      const at = new Date().toISOString();
      const argv = withCoreDumps([...clientArgv(bins.client, { config: paths.replicaConfigFile, duration: seconds, threads: THREADS, warmup: 0 }), '--max-retries', '20']);
      const r = await lab.node(client).exec(argv, { check: false, timeoutMs: 120_000 });
      records.push(trialRecord(seq, r.stdout, r.exitCode, Math.round(performance.now() - t0), at, plan.cluster.n));
    };
    await progress.step(`load: ${THREADS} client threads for ${LOAD_1_S} s`, () => load(0, LOAD_1_S));
    const leader = started[0]!;
    await progress.step(`the leader's machine dies: SIGKILL ${leader.node.name}`, async () => {
      await runner.run(['kill', '-KILL', String(leader.rec.pid)], { check: false });
      await until(async () => !(await alive(leader)), 5000);
    });
    await progress.step(`load: ${THREADS} client threads for ${LOAD_2_S} s`, () => load(1, LOAD_2_S));
    // settled: a new leader is up and running, or too few replicas are left for any quorum
    const rest = started.slice(1);
    await until(async () => {
      const up = [];
      for (const s of rest) if (await alive(s)) up.push(s);
      return up.length < plan.cluster.quorum || records.at(-1)!.completed > 0;
    }, 10_000, 100);

    const capture = async (s: Started, signal?: string) => {
      const core = await waitForCore(run.coresDir, s.rec.pid, 10_000);
      crashes.push(await captureCrash({ run, runner, node: s.node.name, process: 'replica', pid: s.rec.pid, binary: labBin, logFile: s.rec.logFile, core, ...(signal ? { signal } : {}), bpfState: () => bpfState(lab, s.node) }));
    };
    for (const s of rest) if (!(await alive(s))) await progress.step(`${s.node.name} died: capture its crash folder`, () => capture(s));
    const survivors: Started[] = [];
    for (const s of rest) if (await alive(s)) survivors.push(s);
    const snap = survivors.at(-1);
    if (snap) {
      await progress.step(`take a core of ${snap.node.name} (SIGABRT)`, async () => {
        await runner.run(['kill', '-ABRT', String(snap.rec.pid)], { check: false });
        await until(async () => !(await alive(snap)), 10_000);
        await capture(snap, 'SIGABRT');
      });
    }
  } finally {
    guard.restore();
    guard.dispose();
    const last = records.at(-1);
    if (last) {
      last.crashes = crashes;
      if (crashes.some((c) => c.signal && c.signal !== 'SIGABRT')) {
        last.crashed = true;
        last.status = 'crashed';
      }
    }
    const results: ResultsFile = {
      kind: 'electrode-lab-bench-results', version: 1, id: run.id, lab: plan.lab, createdAt: records[0]?.startedAt ?? new Date().toISOString(), finishedAt: new Date().toISOString(),
      outcome: 'complete',
      options: { lab: plan.lab, replicas: [plan.cluster.n], arms: ['all'], threads: [THREADS], repeat: 2, duration: LOAD_1_S, warmup: 0, stopOnCrash: false, keepLab: true, timeoutMs: 120_000 },
      skipped: [], records,
    };
    saveResults(run, results);
    rmSync(run.coresDir, { recursive: true, force: true });
  }
  return { run, crashes };
}
