/** `electrode-lab bench`, `report <run>` and `crashes [run]`. */
import { Command, InvalidArgumentError } from 'commander';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DiagnosticsError } from '../core/diagnostics.js';
import { listCrashes } from '../edges/crash.js';
import { renderReport } from '../bench/report.js';
import { plannedArms, runBench } from '../bench/run.js';
import { schedule } from '../bench/schedule.js';
import { summarize } from '../bench/stats.js';
import { chartOf, loadResults, resolveRun } from '../bench/store.js';
import { toCsv } from '../bench/csv.js';
import { ARM_NAMES, ArmName, BenchOptions, IMPLS, Impl, ResultsFile } from '../bench/types.js';
import { UpstreamBench } from '../upstream/bench.js';
import { treeProblems } from '../upstream/tree.js';
import { LabPaths } from '../edges/paths.js';
import { NEMESIS_KINDS, NO_NEMESIS, parseNemesisList, randomNemesis } from '../bench/nemesis.js';
import { RSS_RULE } from '../bench/rss.js';
import { MAX_CLIENTS, PROVIDER_NAMES, ProviderName } from '../core/spec.js';
import { CliContext } from './context.js';
import { collectReplicaArgs } from './replicaArgs.js';
import { addNetworkOptions, hookOption } from './sharedFlags.js';

function intList(what: string, check: (n: number) => string | undefined) {
  return (value: string): number[] => {
    const parts = value.split(',').map((s) => s.trim()).filter(Boolean);
    if (!parts.length) throw new InvalidArgumentError(`give a comma-separated list of ${what}, e.g. 3,5,7.`);
    const out: number[] = [];
    for (const p of parts) {
      if (!/^\d+$/.test(p)) throw new InvalidArgumentError(`'${p}' is not a whole number.`);
      const n = Number(p);
      const bad = check(n);
      if (bad) throw new InvalidArgumentError(bad);
      if (!out.includes(n)) out.push(n);
    }
    return out;
  };
}

const replicaList = intList('replica counts', (n) => (n < 3 || n > 15 || n % 2 === 0 ? `${n} replicas: use an odd count 2f+1 from 3 to 15, e.g. 3,5,7.` : undefined));
const clientList = intList('client node counts', (n) => (n < 1 || n > MAX_CLIENTS ? `${n} clients: use 1 to ${MAX_CLIENTS} client nodes.` : undefined));
const threadList = intList('thread counts', (n) => (n < 1 || n > 256 ? `${n} threads: use 1 to 256.` : undefined));

function armList(value: string): ArmName[] {
  const parts = value.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = parts.filter((p) => !(ARM_NAMES as readonly string[]).includes(p));
  if (bad.length || !parts.length) throw new InvalidArgumentError(`unknown arm(s) ${bad.join(', ') || '(none)'}; arms are ${ARM_NAMES.join(', ')}.`);
  return [...new Set(parts)] as ArmName[];
}

function implList(value: string): Impl[] {
  const parts = value.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = parts.filter((p) => !(IMPLS as readonly string[]).includes(p));
  if (bad.length || !parts.length) throw new InvalidArgumentError(`unknown implementation(s) ${bad.join(', ') || '(none)'}; they are ${IMPLS.join(', ')}.`);
  return [...new Set(parts)] as Impl[];
}

function positiveInt(what: string) {
  return (value: string): number => {
    if (!/^\d+$/.test(value.trim()) || Number(value) < 1) throw new InvalidArgumentError(`${what} must be a whole number >= 1.`);
    return Number(value);
  };
}

function seconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || value.trim() === '') throw new InvalidArgumentError('must be a number of seconds >= 0.');
  return n;
}


/**
 * The bench's flags as commander parses them: BenchOptions' own fields
 * (derived, not restated), the three whose flag form differs, and what
 * only the command line has. benchOptionsFrom turns them into BenchOptions.
 */
type BenchFlags = Pick<BenchOptions, 'replicas' | 'clients' | 'arms' | 'threads' | 'repeat' | 'requests' | 'duration' | 'warmup'> &
  Partial<Pick<BenchOptions, 'stopOnCrash' | 'keepLab' | 'timeoutMs' | 'check' | 'profile' | 'hook' | 'electrodeTree' | 'restartDelayMs' | 'rssSampleMs' | 'unsafeNoRecovery'>> & {
    /** --replica-args "<index>:<flags>": BenchOptions.replicaArgsFor. */
    replicaArgs?: BenchOptions['replicaArgsFor'];
    /** --nemesis a,b,c, parsed into BenchOptions.nemesis. */
    nemesis?: string;
    /** --impl: BenchOptions.impls. */
    impl?: BenchOptions['impls'];
    /** The command line's own. */
    json?: boolean;
    lab?: string;
    provider?: string;
    subnet?: string;
    basePort?: number;
    nemesisSchedule?: string;
    seed?: number;
    soak?: boolean;
  };

/** What --soak means: 10 minutes, RSS sampled every second. */
export const SOAK_DURATION_S = 600;
export const SOAK_RSS_SAMPLE_MS = 1000;

export function benchOptionsFrom(flags: BenchFlags, lab: string): BenchOptions {
  const problems = [];
  if (flags.requests !== undefined && flags.duration !== undefined) {
    problems.push({ code: 'BENCH_LOAD', subject: '--requests/--duration', message: 'give one of them, not both', hint: 'e.g. --requests 20000 or --duration 10' });
  }
  if (flags.provider !== undefined && !(PROVIDER_NAMES as readonly string[]).includes(flags.provider)) {
    problems.push({ code: 'SPEC_UNKNOWN_PROVIDER', subject: `--provider ${flags.provider}`, message: 'no such provider', hint: `registered providers: ${PROVIDER_NAMES.join(', ')}` });
  }
  const nemesis = flags.nemesis !== undefined ? parseNemesisList(flags.nemesis) : { specs: flags.nemesisSchedule !== undefined ? [] : [NO_NEMESIS], diagnostics: [] };
  problems.push(...nemesis.diagnostics);
  if (flags.nemesisSchedule !== undefined) {
    if (flags.nemesisSchedule !== 'random') problems.push({ code: 'BENCH_NEMESIS', subject: `--nemesis-schedule ${flags.nemesisSchedule}`, message: 'unknown schedule', hint: 'the one schedule is random: --nemesis-schedule random --seed 7 --duration 60' });
    else {
      if (flags.requests !== undefined) problems.push({ code: 'BENCH_NEMESIS', subject: '--nemesis-schedule with --requests', message: 'a schedule is laid over a trial of known length', hint: 'give --duration, e.g. --duration 60' });
      // no seed given: one is drawn and recorded, so the run still replays
      nemesis.specs.push(randomNemesis(flags.seed ?? Math.floor(Math.random() * 2 ** 31)));
    }
    if (flags.check === false) problems.push({ code: 'BENCH_NEMESIS', subject: '--nemesis-schedule with --no-check', message: 'a fault without the safety check proves nothing', hint: 'drop --no-check' });
  } else if (flags.seed !== undefined) problems.push({ code: 'BENCH_NEMESIS', subject: '--seed', message: 'the seed is for --nemesis-schedule random', hint: 'add --nemesis-schedule random' });
  if (flags.unsafeNoRecovery && flags.check === false) problems.push({ code: 'BENCH_UNSAFE', subject: '--unsafe-no-recovery with --no-check', message: 'the negative control exists to show the checker report lost writes', hint: 'drop --no-check' });
  if (flags.rssSampleMs !== undefined && flags.rssSampleMs < 100) problems.push({ code: 'BENCH_RSS', subject: `--rss-sample-ms ${flags.rssSampleMs}`, message: 'sampling more often than every 100 ms measures the sampler', hint: 'e.g. --rss-sample-ms 1000' });
  if (flags.soak && flags.requests !== undefined) problems.push({ code: 'BENCH_RSS', subject: '--soak with --requests', message: 'a soak runs for a time', hint: `give --duration (default with --soak: ${SOAK_DURATION_S})` });
  if (flags.nemesis !== undefined && flags.check === false) {
    problems.push({ code: 'BENCH_NEMESIS', subject: '--nemesis with --no-check', message: 'a fault without the safety check proves nothing', hint: 'drop --no-check' });
  }
  if (flags.electrodeTree !== undefined && !flags.impl?.includes('upstream')) {
    problems.push({ code: 'BENCH_IMPL', subject: '--electrode-tree', message: 'the tree is only run with --impl upstream', hint: 'add --impl ours,upstream' });
  }
  if (problems.length) throw new DiagnosticsError(problems, 'input');
  // a fixed duration by default: every arm costs the same time, even one that stalls
  const duration = flags.requests === undefined ? (flags.duration ?? (flags.soak ? SOAK_DURATION_S : 3)) : undefined;
  const rssSampleMs = flags.rssSampleMs ?? (flags.soak ? SOAK_RSS_SAMPLE_MS : undefined);
  const requests = flags.requests;
  const loadS = duration ?? (requests ?? 0) / 100; // a pessimistic 100 ops/s for the time limit
  return {
    lab,
    replicas: flags.replicas,
    ...(flags.clients && flags.clients.some((k) => k > 1) ? { clients: flags.clients } : {}),
    arms: flags.arms,
    threads: flags.threads,
    repeat: flags.repeat,
    ...(requests !== undefined ? { requests } : {}),
    ...(duration !== undefined ? { duration } : {}),
    warmup: flags.warmup,
    stopOnCrash: Boolean(flags.stopOnCrash),
    keepLab: Boolean(flags.keepLab),
    ...(flags.replicaArgs ? { replicaArgsFor: flags.replicaArgs } : {}),
    timeoutMs: flags.timeoutMs ?? Math.round((flags.warmup + loadS) * 1000 + 60_000),
    nemesis: nemesis.specs,
    check: flags.check !== false,
    ...(flags.profile ? { profile: true } : {}),
    ...(flags.hook && flags.hook !== 'auto' ? { hook: flags.hook } : {}),
    ...(flags.impl && !(flags.impl.length === 1 && flags.impl[0] === 'ours') ? { impls: flags.impl } : {}),
    ...(flags.electrodeTree ? { electrodeTree: flags.electrodeTree } : {}),
    ...(flags.restartDelayMs !== undefined ? { restartDelayMs: flags.restartDelayMs } : {}),
    ...(rssSampleMs !== undefined ? { rssSampleMs } : {}),
    ...(flags.unsafeNoRecovery ? { unsafeNoRecovery: true } : {}),
  };
}

function machineSummary(results: ResultsFile, dir: string) {
  return {
    kind: 'electrode-lab-bench-summary',
    version: 1,
    run: results.id,
    dir,
    lab: results.lab,
    outcome: results.outcome,
    trials: results.records.length,
    unsafe: results.unsafe ?? 0,
    crashed: results.records.filter((r) => r.crashed).length,
    failed: results.records.filter((r) => r.status === 'failed').length,
    skipped: results.skipped,
    rows: summarize(results),
    crashes: results.records.flatMap((r) => r.crashes.map((c) => ({ replicas: r.replicas, arm: r.arm, threads: r.threads, repeat: r.repeat, ...c }))),
    files: { results: join(dir, 'results.json'), csv: join(dir, 'results.csv'), environment: join(dir, 'environment.json'), chart: join(dir, 'chart.svg'), commands: join(dir, 'commands.log') },
  };
}

export function registerBench(program: Command, ctx: CliContext): void {
  const bench = program
    .command('bench')
    .description('benchmark the lab: replica counts x fast-path arms x client threads, repeated and interleaved; stores a run folder')
    .option('--replicas <list>', 'replica counts, e.g. 3,5,7 (the lab is resized for each)', replicaList, [3, 5, 7])
    .option('--clients <list>', 'client nodes that drive load together, e.g. 1,2 (the lab is resized for each; --threads is per client node)', clientList)
    .option('--arms <list>', `arms among ${ARM_NAMES.join(',')}`, armList, [...ARM_NAMES])
    .option('--threads <list>', 'client threads (closed loop, one outstanding request each), e.g. 1,8', threadList, [1, 8])
    .option('--repeat <n>', 'repeats of every combination (arm order rotates per repeat)', positiveInt('--repeat'), 3)
    .option('--requests <n>', 'requests per trial instead of a duration', positiveInt('--requests'))
    .option('--duration <s>', 'seconds per trial (default 3)', seconds)
    .option('--warmup <s>', 'client warm-up seconds, not measured', seconds, 1)
    .option('--stop-on-crash', 'stop at the first crashed trial (default: record it and go on)')
    .option('--keep-lab', 'leave the lab up at the end (a lab that was up before the bench is always left up)')
    .option('--lab <name>', 'lab name (same as the global --name)');
  addNetworkOptions(bench, { whose: 'a lab the bench creates', providerDefault: 'netns' })
    .option('--timeout-ms <ms>', 'limit for one client run (default: warm-up + duration, or requests at 100 ops/s, + 60 s)', positiveInt('--timeout-ms'))
    .option('--replica-args <index:flags>', "extra flags for one replica, repeatable, e.g. '2:--crash-after 500'", collectReplicaArgs)
    .option('--nemesis <list>', `faults, one trial each per combination: ${NEMESIS_KINDS.join(', ')} (kill-follower:K, kill-restart:leader|follower, pause:leader|follower, partition:leader|follower, loss:P%, dup:P%, reorder:P%, forge:PPS)`)
    .option('--nemesis-schedule <random>', 'one more trial per combination under a seeded sequence of mixed faults over the whole trial (kill, kill-restart, pause, partition, loss; never more than f replicas faulty); use a long --duration')
    .option('--seed <S>', 'the seed of --nemesis-schedule random (default: drawn and recorded); repeat r uses S + r', (v) => { if (!/^\d+$/.test(v)) throw new InvalidArgumentError('the seed is a whole number.'); return Number(v); })
    .option('--restart-delay-ms <ms>', 'kill-restart: ms from the kill to the restart (default 100: a quick supervisor, inside the view-change timeout)', (v) => { if (!/^\d+$/.test(v)) throw new InvalidArgumentError('whole milliseconds.'); return Number(v); })
    .option('--soak', `a soak: --duration ${SOAK_DURATION_S} unless given and --rss-sample-ms ${SOAK_RSS_SAMPLE_MS}`)
    .option('--rss-sample-ms <ms>', "sample every replica's VmRSS this often; a trial whose replicas grew fails", positiveInt('--rss-sample-ms'))
    .option('--unsafe-no-recovery', 'UNSAFE, lab only: run the lab build (make -C native lab-faults) with --lab-no-recovery on every start and restart, the negative control that must show lost writes under kill-restart')
    .option('--no-check', 'skip recording histories and committed logs (and the safety verdict)')
    .addOption(hookOption(false))
    .option('--profile', 'record a whole-system profile (perf, linux-perf) per replica count x arm and draw a flame graph of each (netns labs)')
    .option('--impl <list>', `implementations, interleaved trial by trial: ${IMPLS.join(',')} (upstream = the user's Electrode tree, patched per lab size, its own client; arms are its compile-time switches; no nemesis, no floor)`, implList)
    .option('--electrode-tree <dir>', 'the upstream Electrode tree for --impl upstream (default: the tree the lab was brought up with)')
    .option('--json', 'print the machine-readable summary instead of the table')
    .addHelpText(
      'after',
      `
Safety: every trial records the client's operation history and each replica's
committed log; the history is checked for linearizability (Wing & Gong with
Lowe's memo, per key) and every acknowledged request must be in the survivors'
committed log. The verdict is in results.json, the table (safety column) and
the chart; a violation makes bench exit 1 and prints the smallest bad history.

Nemesis: each fault hits a third into the measured part (the leader, a follower,
or every link) and is healed at two thirds; a kill lasts the trial. Every action
is in commands.log; results.json records the targets and how long the lab took
to elect a leader again.

Arms: relay-floor = VR's message pattern without the protocol: every replica
runs replica --relay-floor; replica0 sends each request to the others and
answers the client once f sent it back, with the replica's own I/O loop (the
table's p50/relay column: protocol overhead); floor = a UDP echo on replica0's
address and the same client (client --echo), one round trip (p50/2 echo);
baseline = no fast paths; broadcast = TC egress fan-out (+ --fast-broadcast);
quorum = XDP PrepareOK pruning (+ --fast-quorum); reply = XDP fast reply on followers
(+ --fast-reply); all = the three together. Arms that need the eBPF loader are skipped
with a message when bpf/build/el-loader is missing (make -C bpf).

CPU: every trial samples /proc/stat and each replica's task time before and after
the client runs; the table shows CPU us per committed op for the whole lab, its
change over baseline, leader and busiest-follower task time per op, and context
switches per op (README "CPU per operation" says what is counted where).
With --threads of three or more counts the chart adds load curves (latency
against throughput, one line per arm). --profile adds profiles/<n>r-<arm>-<t>t.svg
(flame graph), .folded and .perf.data (for perf report) to the run folder.

Restarts: kill-restart[:leader|follower] kills at the window's start and starts
the replica again --restart-delay-ms later (default 100, before the others'
300-500 ms view-change timeout), with its own dump file; the trial waits until
its log says \`view V normal\` (it recovered) and records the restart and the time
to recovered; one still recovering 10 s later fails the trial.
--nemesis-schedule random --seed S --duration 60: a seeded mix of faults over the
whole trial, never more than f replicas faulty at once (a restarted replica counts
until it is normal); the seed and the exact schedule are in results.json, and the
same seed replays the same schedule.
Forged datagrams: forge[:PPS] runs native/build/forge on the client node for the
fault window: well-formed lies at every replica (acks beyond the leader's log,
replica messages from the client's address, copies with another replica's index,
view jumps, Prepares with bad entries, state nobody asked for), from the client's
address and with replicas' addresses forged (PPS datagrams a second, default 2000).
The report prints "forged: sent N / dropped M" from the replicas' exit counters.
Clients: --clients K runs K client nodes at once (--threads each); their histories
are checked as one, latency comes from their histograms added up and throughput
from the window all of them measured in (results.json keeps each one's figures).
Soak: --soak (or --rss-sample-ms) samples VmRSS of every replica; ${RSS_RULE}.
--unsafe-no-recovery labels every row UNSAFE: its lost writes prove the checker.

Verdicts: ok = linearizable and every acknowledged request at the op its reply
named in the survivors' logs; LOST n / NOT LIN / DIVERGED = a violation;
unknown = the checker's budget ran out; not checked = no history, no ack log
or no surviving committed log: nothing was proven (never shown as ok).

Every run is stored under runs/<timestamp>-<lab>/ ($ELECTRODE_LAB_RUNS): results.json,
results.csv, environment.json, commands.log, chart.svg, nodes/<node>/ logs and
crashes/<node>-<pid>/ (core, backtrace.txt, log.tail, dmesg.txt, bpf.json).
While it runs, the kernel's core_pattern points into the run folder; it is restored
at the end, on Ctrl-C, and by the next run if this one was killed hard. One bench at a
time owns it: another one refuses to start (ELECTRODE_LAB_CORE_WAIT_S=<s> waits instead).

Examples:
  $ electrode-lab bench --replicas 3,5,7 --arms baseline,broadcast,quorum,reply,all \\
        --repeat 5 --requests 20000 --warmup 2 --threads 1,8
  $ electrode-lab bench --replicas 3 --arms baseline,reply --duration 10 --json
  $ electrode-lab bench --replicas 5 --arms baseline --replica-args '2:--crash-after 500'
  $ electrode-lab bench --replicas 5,7 --arms baseline,all --threads 8 --repeat 1 \\
        --nemesis none,kill-leader,kill-follower:2,pause,partition,loss:5%
  $ electrode-lab bench --replicas 7 --arms floor,baseline,all --threads 1,2,4,8,16,32 --repeat 1
  $ electrode-lab bench --replicas 7 --arms baseline,all --threads 8 --repeat 1 --profile
  $ electrode-lab bench --replicas 7 --clients 1,2 --arms baseline,all --threads 8 --repeat 3
  $ electrode-lab bench --replicas 3,5,7 --impl ours,upstream --arms baseline,broadcast,all --electrode-tree ~/Electrode
  $ electrode-lab bench --replicas 3,5,7 --arms baseline,all --threads 8 --repeat 1 \
        --nemesis kill-restart:leader,kill-restart:follower
  $ electrode-lab bench --replicas 5 --arms all --threads 8 --repeat 1 \
        --nemesis-schedule random --seed 7 --duration 60
  $ electrode-lab bench --replicas 3,5,7 --arms baseline,all --threads 8 --repeat 1 --nemesis forge
  $ electrode-lab bench --replicas 3 --arms baseline --threads 8 --repeat 1 --soak
  $ electrode-lab bench --replicas 3 --arms baseline --threads 8 --repeat 1 \
        --nemesis kill-restart:follower --unsafe-no-recovery
  $ electrode-lab report            re-print and re-plot the newest run
  $ electrode-lab crashes           crashes of the newest run with their top frames`,
    )
    .action(async (flags: BenchFlags) => {
      const g = ctx.globals();
      const lab = flags.lab ?? g.name;
      const opts = benchOptionsFrom(flags, lab);
      const progress = ctx.progress();
      if (opts.impls?.includes('upstream') && opts.clients?.some((k) => k > 1)) {
        throw new DiagnosticsError([{ code: 'BENCH_CLIENTS', subject: '--clients with --impl upstream', message: "upstream's trials run its own client on one client node; a row of several would measure one", hint: 'bench upstream with --clients 1, and ours with --clients 1,2 in a second run' }], 'input');
      }
      const treeBad = opts.electrodeTree ? treeProblems(opts.electrodeTree) : [];
      if (treeBad.length) throw new DiagnosticsError(treeBad.map((m) => ({ code: 'UPSTREAM_TREE', subject: `--electrode-tree ${opts.electrodeTree}`, message: m, hint: 'give the root of a clone of the Electrode repository (it has Makefile, vr/, bench/, xdp-handler/)' })), 'input');
      if (opts.impls?.includes('upstream') && !opts.electrodeTree && !UpstreamBench.treeOf({ paths: new LabPaths(ctx.home(), lab) })) {
        throw new DiagnosticsError([{ code: 'BENCH_IMPL', subject: '--impl upstream', message: `lab '${lab}' was not brought up with an upstream tree`, hint: 'add --electrode-tree <your Electrode clone>, or `electrode-lab up --electrode-tree ...` first' }], 'input');
      }
      if (g.dryRun) {
        const arms = plannedArms(opts);
        for (const s of arms.skipped) ctx.out(`[dry-run] skip ${s.reason}`);
        const trials = schedule({ replicas: opts.replicas, arms: arms.run, threads: opts.threads, repeat: opts.repeat, nemesis: (opts.nemesis ?? [NO_NEMESIS]).map((n) => n.name), ...(opts.impls ? { impls: opts.impls } : {}), ...(opts.clients ? { clients: opts.clients } : {}) });
        ctx.out(`[dry-run] ${trials.length} trials in this order (nothing is run):`);
        for (const t of trials) ctx.out(`  ${t.seq + 1}. ${t.replicas} replicas, ${t.clients ? `${t.clients} clients, ` : ''}${t.impl ? `${t.impl} ` : ''}${t.arm}, ${t.threads} threads, repeat ${t.repeat + 1}${t.nemesis !== 'none' ? `, nemesis ${t.nemesis}` : ''}`);
        return;
      }
      const labSpec = {
        ...(flags.provider ? { provider: flags.provider as ProviderName } : { provider: 'netns' as const }),
        ...(flags.subnet ? { subnet: flags.subnet } : {}),
        ...(flags.basePort ? { basePort: flags.basePort } : {}),
      };
      const waitS = Number(ctx.env.ELECTRODE_LAB_CORE_WAIT_S ?? '0');
      // the bench says itself what a Ctrl-C does (finish the trial, restore the core pattern)
      const cancel = ctx.cancellation(() => undefined);
      const outcome = await runBench(opts, {
        env: ctx.env,
        home: ctx.home(),
        runner: ctx.runner(),
        progress,
        getProvider: (n) => ctx.getProvider(n),
        labSpec,
        coreLockWaitMs: Number.isFinite(waitS) && waitS > 0 ? waitS * 1000 : 0,
        signal: cancel.signal,
        otherImpls: { upstream: (o, p) => new UpstreamBench(o.electrodeTree ?? UpstreamBench.treeOf({ paths: new LabPaths(ctx.home(), o.lab) }) ?? '', p) },
      }).finally(() => cancel.dispose());
      if (flags.json) ctx.out(JSON.stringify(machineSummary(outcome.results, outcome.run.root)));
      else ctx.out(outcome.report);
      if ((outcome.results.outcome !== 'complete' && outcome.results.outcome !== 'stopped') || (outcome.results.unsafe ?? 0) > 0) ctx.setExitCode(1);
    });

  program
    .command('report')
    .description('re-print the table of a stored bench run and re-plot its chart')
    .argument('[run]', 'run id, part of it, or a run folder (default: the newest run)')
    .option('--json', 'print the machine-readable summary')
    .addHelpText('after', `\nExamples:\n  $ electrode-lab report\n  $ electrode-lab report 20261122T031500Z-lab\n  $ electrode-lab report runs/20261122T031500Z-lab --json`)
    .action((ref: string | undefined, flags: { json?: boolean }) => {
      const run = resolveRun(ref, ctx.env);
      const results = loadResults(run);
      // re-plot with this version's renderer (the stored records are the source of truth)
      writeFileSync(run.chartSvg, chartOf(results));
      writeFileSync(run.resultsCsv, toCsv(results.records));
      if (flags.json) ctx.out(JSON.stringify(machineSummary(results, run.root)));
      else ctx.out(renderReport(results, run.root));
    });

  program
    .command('crashes')
    .description('list the crashes of a bench run with their top frames')
    .argument('[run]', 'run id, part of it, or a run folder (default: the newest run)')
    .option('--json', 'print them as JSON')
    .addHelpText('after', `\nExamples:\n  $ electrode-lab crashes\n  $ electrode-lab crashes 20261122T031500Z-lab --json`)
    .action((ref: string | undefined, flags: { json?: boolean }) => {
      const run = resolveRun(ref, ctx.env);
      const results = loadResults(run);
      const byDir = new Map(results.records.flatMap((r) => r.crashes.map((c) => [c.dir, r] as const)));
      const crashes = listCrashes(run);
      if (flags.json) {
        ctx.out(JSON.stringify(crashes.map((c) => ({ ...c, folder: join(run.root, c.dir), trial: byDir.get(c.dir) ? { replicas: byDir.get(c.dir)!.replicas, arm: byDir.get(c.dir)!.arm, threads: byDir.get(c.dir)!.threads, repeat: byDir.get(c.dir)!.repeat } : null }))));
        return;
      }
      if (!crashes.length) {
        ctx.out(`run ${run.id}: no crashes`);
        return;
      }
      ctx.out(`run ${run.id}: ${crashes.length} crash(es)`);
      for (const c of crashes) {
        const t = byDir.get(c.dir);
        ctx.out(`${c.node} (${c.process}, pid ${c.pid}) ${c.signal ?? 'died'}${t ? ` during ${t.replicas} replicas/${t.arm}/${t.threads}t/repeat ${t.repeat + 1}` : ''}`);
        ctx.out(`  top frames: ${c.topFrames.slice(0, 6).join(' <- ') || '(no backtrace)'}`);
        ctx.out(`  folder: ${join(run.root, c.dir)}${c.note ? `  (${c.note})` : ''}`);
        for (const l of c.explanation ?? []) ctx.out(`  why: ${l}`);
        if (c.explanationHeld && !c.explanation?.length) ctx.out(`  why: ${c.explanationHeld}`);
      }
    });
}

