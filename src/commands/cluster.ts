/**
 * `start`, `stop`, `client`: drive the replicated system by hand on a lab
 * that is up (course labs, debugging). `bench` does the same per trial; these
 * keep the replicas running so a person can kill a leader, read the logs,
 * watch the eBPF counters.
 */
import { Command, Option } from 'commander';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { DiagnosticsError, LabError } from '../core/diagnostics.js';
import { ALL_FAST_PATHS, FastPaths, XdpMode, attachFastPaths, detachFastPaths, fastPathNames, nodeFiles, unavailableFastPaths, HookChoice } from '../lab/bpf.js';
import { buildLabFaultsReplica, nativeBinaries } from '../edges/build.js';
import { openLab } from '../providers/lab.js';
import { startOn, stopAll, waitBound } from '../lab/replicas.js';
import { clientArgv, replicaArgv } from '../core/argv.js';
import { clients } from '../core/plan.js';
import { ProcessRecord } from '../providers/provider.js';
import { loadProcessRecords } from '../edges/state.js';
import { startHow } from '../course/logs.js';
import { markRunStart } from '../course/runmark.js';
import { CliContext } from './context.js';
import { checkReplicaIndexes, collectReplicaArgs } from './replicaArgs.js';
import { addFastPathOptions, hookOption, xdpModeOption } from './sharedFlags.js';

const REPLICA_PROC = 'replica';



export function registerCluster(program: Command, ctx: CliContext): void {
  addFastPathOptions(program.command('start').description('start fresh replicas on every replica node (optionally with eBPF fast paths); they run until `electrode-lab stop`'))
    .option('--replica-args <index:flags>', "extra flags for one replica, repeatable, e.g. '0:--drop-rate 0.05'", collectReplicaArgs, {})
    .addOption(new Option('--log-level <level>', 'replica log level').choices(['debug', 'info', 'warn', 'error']).default('info'))
    .addOption(xdpModeOption())
    .addOption(hookOption())
    .option('--dump-log <prefix>', "each replica writes its committed log to <prefix>.<node>.log as it commits (a restart: <prefix>.<node>.log.1, ...), for `check-history --committed`")
    .option('--unsafe-no-recovery', 'UNSAFE, lab only: start the lab build (make -C native lab-faults) with --lab-no-recovery, so that every start and `restart` comes up normal with empty state instead of recovering (labs/06: the writes that loses)')
    .addHelpText(
      'after',
      `
Examples:
  $ electrode-lab start                      baseline: no eBPF
  $ electrode-lab start --all                attach all fast paths, replicas use them
  $ electrode-lab start --all --xdp-mode generic   the same in generic (skb) XDP mode
  $ electrode-lab start --replica-args '2:--crash-after 500'
  $ electrode-lab start --dump-log committed     committed.replica0.log, ... for check-history
Then: electrode-lab client -n 2000, electrode-lab status (PIDs), electrode-lab stop.
Replica logs: <lab home>/labs/<lab>/logs/<node>/replica.log; every start first
appends a line "<time> electrode-lab start: run <ISO time> (<how>)" to each.`,
    )
    .action(async (o: { broadcast?: boolean; quorum?: boolean; reply?: boolean; all?: boolean; replicaArgs: Record<string, string[]>; logLevel: string; xdpMode: XdpMode; hook: HookChoice; dumpLog?: string; unsafeNoRecovery?: boolean }) => {
      const { plan, paths, provider } = ctx.loadLab();
      const pctx = ctx.providerContext(paths);
      const extra = o.replicaArgs;
      checkReplicaIndexes(extra, plan.cluster.n);
      const running: ProcessRecord[] = [];
      const labNow = openLab(provider, plan, pctx);
      // ours, or upstream's (same addresses and ports): one implementation at a time
      for (const r of loadProcessRecords(paths)) if ((r.name === REPLICA_PROC || r.name.startsWith('upstream-')) && (await labNow.nodeOf(r).alive(r))) running.push(r);
      const upstreamUp = running.filter((r) => r.name.startsWith('upstream-'));
      if (upstreamUp.length && !ctx.runner().dryRun) {
        throw new LabError(`upstream Electrode is running in lab '${plan.lab}' (${upstreamUp.map((r) => `${r.node}:${r.name}:${r.pid}`).join(', ')}); run \`electrode-lab upstream stop${plan.lab === 'lab' ? '' : ` --name ${plan.lab}`}\` first`, 'UPSTREAM_RUNNING');
      }
      if (running.length && !ctx.runner().dryRun) {
        throw new LabError(`replicas are already running in lab '${plan.lab}' (${running.map((r) => `${r.node}:${r.pid}`).join(', ')}); run \`electrode-lab stop\` first`, 'ALREADY_STARTED');
      }
      const bins = nativeBinaries();
      if (!existsSync(bins.replica)) throw new LabError(`${bins.replica} is missing; run \`npm run build\` (or \`make -C native\`)`, 'NOT_BUILT');
      const binary = o.unsafeNoRecovery ? await ctx.progress().step('build the lab replica for --unsafe-no-recovery (make -C native lab-faults)', () => buildLabFaultsReplica(ctx.runner())) : bins.replica;
      if (o.unsafeNoRecovery) ctx.progress().warn('--unsafe-no-recovery: UNSAFE, lab only: every replica starts and restarts normal with empty state, without recovery; acknowledged writes can be lost');
      const fp: FastPaths = o.all ? ALL_FAST_PATHS : { broadcast: Boolean(o.broadcast), quorum: Boolean(o.quorum), reply: Boolean(o.reply) };
      const useBpf = fp.broadcast || fp.quorum || fp.reply;
      if (useBpf) {
        if (!existsSync(nodeFiles(plan, paths.peerTableFile).loader)) throw new LabError('the eBPF loader is missing; run `npm run build` (or `make -C bpf`)', 'NOT_BUILT');
        const results = await ctx.progress().step(`attach ${fastPathNames(fp)} (hook ${o.hook}, xdp ${o.xdpMode}) on ${plan.cluster.n} replicas`, () => attachFastPaths(openLab(provider, plan, pctx), fp, o.xdpMode, o.hook));
        const missing = unavailableFastPaths(results, fp);
        if (missing.length) throw new LabError(`cannot start with ${fastPathNames(fp)}: ${missing.join('; ')}`, 'FAST_PATH_UNAVAILABLE');
      }
      // runs of one replica log never run together: each start opens with a boundary line
      const replicaArgs = Object.entries(extra).map(([i, a]) => `${i}:${a.join(' ')}`).join(' ');
      await markRunStart(openLab(provider, plan, pctx), startHow({ fastPaths: fastPathNames(fp), xdp: o.xdpMode, log: o.logLevel, ...(replicaArgs ? { replicaArgs } : {}), ...(o.unsafeNoRecovery ? { noRecovery: true } : {}) }), REPLICA_PROC);
      const lab = openLab(provider, plan, pctx);
      const dumpPrefix = o.dumpLog === undefined ? undefined : resolve(o.dumpLog);
      const started = await startOn(lab, lab.replicas(), REPLICA_PROC, binary, (node) =>
        replicaArgv(binary, {
          config: paths.replicaConfigFile, index: node.index, logLevel: o.logLevel, ...(useBpf ? { pinDir: node.pinDir } : {}), fast: fp,
          ...(dumpPrefix ? { dumpLog: `${dumpPrefix}.${node.name}.log` } : {}), ...(o.unsafeNoRecovery ? { labNoRecovery: true } : {}), extra: extra[String(node.index)] ?? [],
        }),
      );
      if (ctx.runner().dryRun) return;
      const timeoutMs = provider.startTimeoutMs;
      const { ok, dead, pending } = await ctx.progress().step(`wait for ${started.length} replicas to bind their ports`, () => waitBound(lab, started, timeoutMs));
      if (dead.length) throw new LabError(`replica(s) exited during start: ${dead.map((s) => `${s.node.name} (see ${s.rec.logFile})`).join(', ')}`, 'START_FAILED');
      if (!ok) throw new LabError(`replicas did not bind their ports within ${timeoutMs / 1000}s (${pending.map((s) => s.node.name).join(', ')}); see ${paths.logsDir}`, 'START_FAILED');
      for (const s of started) ctx.out(`${s.node.name}  pid ${s.rec.pid}  ${s.node.ip}:${s.node.port}  log ${s.rec.logFile}`);
      ctx.out(`leader of view 0 is replica0; run \`electrode-lab client${plan.lab === 'lab' ? '' : ` --name ${plan.lab}`} -n 1000\` to send requests`);
    });

  program
    .command('stop')
    .description('stop the replicas `start` began and detach the fast paths (idempotent)')
    .action(async () => {
      const { plan, paths, provider } = ctx.loadLab();
      const pctx = ctx.providerContext(paths);
      const lab = openLab(provider, plan, pctx);
      const recs = loadProcessRecords(paths).filter((r) => r.name === REPLICA_PROC);
      for (const rec of recs) {
        const alive = await lab.nodeOf(rec).alive(rec);
        await stopAll(lab, [rec]);
        ctx.out(`${rec.node}: pid ${rec.pid} ${alive ? 'stopped' : 'had already exited'}`);
      }
      if (existsSync(nodeFiles(plan, paths.peerTableFile).loader)) await detachFastPaths(lab);
      if (!recs.length) ctx.out('no replicas were running');
    });

  program
    .command('client')
    .description('run the closed-loop client on client0 against the lab (output passes through)')
    .option('-n, --requests <n>', 'number of requests')
    .option('-d, --duration <s>', 'seconds to run instead of a request count')
    .option('-t, --threads <n>', 'client threads, one outstanding request each', '1')
    .option('-w, --warmup <s>', 'warm-up seconds, not measured', '0')
    .option('--history <file>', 'record the operation history (JSON lines) for `electrode-lab check-history`')
    .option('--ack-log <file>', 'record every acknowledged request (`<client> <request>` lines)')
    .addHelpText('after', '\nExamples:\n  $ electrode-lab client -n 2000\n  $ electrode-lab client -d 5 -t 8 -w 1\n  $ electrode-lab client -d 3 -t 8 --history /tmp/h.jsonl && electrode-lab check-history /tmp/h.jsonl\n\n-n counts measured requests (after the warm-up). The history and ack files are\nwritten on the client node and copied here when that node is a VM.')
    .action(async (o: { requests?: string; duration?: string; threads: string; warmup: string; history?: string; ackLog?: string }) => {
      for (const [flag, v] of [['--requests', o.requests], ['--duration', o.duration], ['--threads', o.threads], ['--warmup', o.warmup]] as const) {
        if (v !== undefined && !/^\d+(\.\d+)?$/.test(v)) throw new DiagnosticsError([{ code: 'BAD_OPTION', subject: `${flag}=${v}`, message: 'expected a number', hint: 'e.g. -n 1000 -t 4' }]);
      }
      if (o.requests && o.duration) throw new DiagnosticsError([{ code: 'BAD_OPTION', subject: '--requests/--duration', message: 'both given', hint: 'give one of them' }]);
      const { plan, paths, provider } = ctx.loadLab();
      const node = clients(plan)[0];
      if (!node) throw new LabError(`lab '${plan.lab}' has no client node`);
      const bins = nativeBinaries();
      if (!existsSync(bins.client)) throw new LabError(`${bins.client} is missing; run \`npm run build\``, 'NOT_BUILT');
      const files = { history: o.history && resolve(o.history), ackLog: o.ackLog && resolve(o.ackLog) };
      const argv = clientArgv(bins.client, { config: paths.replicaConfigFile, ...(o.duration ? { duration: o.duration } : { requests: o.requests ?? '1000' }), threads: o.threads, warmup: o.warmup, ...(files.history ? { history: files.history } : {}), ...(files.ackLog ? { ackLog: files.ackLog } : {}) });
      const client = openLab(provider, plan, ctx.providerContext(paths)).node(node);
      const r = await client.exec(argv, { check: false, stdio: 'inherit' });
      for (const f of [files.history, files.ackLog]) if (f && !existsSync(f)) await client.copyOut(f, f).catch(() => false);
      ctx.setExitCode(r.exitCode ?? 1);
    });
}
