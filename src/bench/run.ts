/**
 * `electrode-lab bench`: for each replica count, bring the lab to that size;
 * for each trial (arm x threads x repeat, arms rotated per repeat) attach
 * exactly that arm's fast paths, start FRESH replicas, wait until a request
 * commits, run the client in the client node, stop the replicas, detach.
 * Cores go into the run folder; a process that died from a signal gets a
 * crash folder and the trial is marked crashed; the bench goes on.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { DiagnosticsError, LabError } from '../core/diagnostics.js';
import { LabPaths, RunPaths, projectRoot } from '../edges/paths.js';
import { buildLabFaultsReplica, nativeBinaries } from '../edges/build.js';
import { abortedBy } from '../edges/cancel.js';
import { loadPlan } from '../edges/state.js';
import { listCores } from '../edges/crash.js';
import { EnvironmentFile, hostEnvironment, nodeEnvironment } from './environment.js';
import { fastPathsUnavailable } from './fastpaths.js';
import { BenchLab, LabControl } from './lab.js';
import { abilitiesOf } from '../providers/lab.js';
import { renderReport } from './report.js';
import { schedule } from './schedule.js';
import { LoggingRunner, guardRunCores, newRunPaths } from './store.js';
import { ARMS, ArmName, BenchOptions, Impl, ResultsFile, TrialRecord, armUsesBpf, labSize } from './types.js';
import { NO_NEMESIS, NemesisSpec, nemesisProblems } from './nemesis.js';
import { isSafe } from './safety.js';
import { Bench, BenchDeps, Binaries, TrialImpl } from './trial.js';

export type { BenchDeps, Binaries };
export { nativeBinaries };

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
  const can = abilitiesOf(deps.getProvider(providerName));
  const nemesisBad = opts.nemesis.flatMap((spec) =>
    opts.replicas.flatMap((n) => nemesisProblems(spec, n, can.canSplit).map((message) => ({ code: 'BENCH_NEMESIS', subject: `--nemesis ${spec.name}`, message, hint: 'pick faults this lab can survive and this provider can make' }))),
  );
  if (opts.nemesis.some((x) => x.kind !== 'none') && !can.canFault) nemesisBad.push({ code: 'BENCH_NEMESIS', subject: '--nemesis', message: `the ${providerName} provider cannot inject faults`, hint: 'use the netns or vagrant provider' });
  if (opts.profile && !can.sharedKernel) nemesisBad.push({ code: 'BENCH_PROFILE', subject: '--profile', message: `the ${providerName} provider's nodes run their own kernels: one perf on this host cannot see them`, hint: 'profile a netns lab, or run perf inside a node: electrode-lab exec replica0 -- perf record -a -g -- sleep 3' });
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
  const trials = schedule({ replicas: opts.replicas, arms: arms.run, threads: opts.threads, repeat: opts.repeat, nemesis: opts.nemesis.map((n) => n.name), ...(opts.impls ? { impls: opts.impls } : {}), ...(opts.clients ? { clients: opts.clients } : {}) });
  // every implementation the schedule names, behind one interface (the user's tree comes from the command)
  const impls: Partial<Record<Impl, TrialImpl>> = { ours: { forLab: async () => undefined, trial: (t, lab) => bench.trial(t, lab) } };
  for (const name of opts.impls ?? []) {
    if (name === 'ours') continue;
    const make = deps.otherImpls?.[name];
    if (!make) throw new LabError(`--impl ${name}: this bench was started without it`, 'BENCH_IMPL');
    impls[name] = make(opts, progress);
  }

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
    outer: for (const n of opts.replicas) for (const k of opts.clients ?? [1]) {
      if (bench.aborted) break outer;
      current = await labs.atSize(n, k);
      await refuseKernelDrift(current);
      for (const impl of Object.values(impls)) await impl.forLab(current);
      writeFileSync(run.planFile, JSON.stringify(current.plan, null, 2) + '\n');
      const nodesEnv: EnvironmentFile['labs'][string]['nodes'] = {};
      for (const node of current.plan.nodes) nodesEnv[node.name] = await nodeEnvironment(current, node);
      bench.env.labs[labSize(n, k)] = { plan: current.plan, nodes: nodesEnv, arms: {} };
      bench.saveEnv();
      for (const t of trials.filter((x) => x.replicas === n && (x.clients ?? 1) === k)) {
        if (bench.aborted) break outer;
        done++;
        const title = `[${done}/${trials.length}] ${n} replicas${k > 1 ? ` · ${k} clients` : ''} · ${t.arm} · ${t.threads} thread${t.threads === 1 ? '' : 's'} · repeat ${t.repeat + 1}/${opts.repeat}`;
        const rec = await progress.step(title + (t.impl ? ` · ${t.impl}` : '') + (t.nemesis !== 'none' ? ` · nemesis ${t.nemesis}` : ''), () => impls[t.impl ?? 'ours']!.trial(t, current!, run, opts));
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
    if (current) await current.restoreCores().catch((e: Error) => progress.warn(`restoring the nodes' core_pattern: ${e.message}`));
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
  const drift = await lab.kernelDrift();
  if (drift.length) {
    throw new LabError(
      `refusing to bench: ${drift.map((c) => `${c.node} runs ${c.actual}, the lab pins ${c.expected}`).join('; ')}; run \`electrode-lab down\` and \`electrode-lab up\` to reinstall the pinned kernel`,
      'BENCH_KERNEL_DRIFT',
    );
  }
}
