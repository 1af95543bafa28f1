/**
 * `electrode-lab restart <node>`: start one replica of a lab started by
 * `start` again, with the command line it had (its pid file), a dump file of
 * its own per incarnation, and fresh eBPF state on that node when the fast
 * paths are attached; then wait until its log says it is normal again.
 * `status` shows each replica's status from its log (replicaStatus.ts).
 */
import { Command } from 'commander';
import { DiagnosticsError, LabError } from '../core/diagnostics.js';
import { fastPathsOf, reattachFastPaths, savedAttach, XdpMode } from '../lab/bpf.js';
import { restartArgv } from '../core/argv.js';
import { replicas } from '../core/plan.js';
import { openLab } from '../providers/lab.js';
import { until } from '../edges/proc.js';
import { describeReplicaStatus, normalAfter, replicaStatusFromLog } from '../core/replicaStatus.js';
import { logTail, restartOn, waitBound } from '../lab/replicas.js';
import { loadProcessRecords } from '../edges/state.js';
import { CliContext } from './context.js';

const REPLICA_PROC = 'replica';

export function registerRestart(program: Command, ctx: CliContext): void {
  program
    .command('restart')
    .argument('<node>', 'the replica to start again, e.g. replica1')
    .description('start one replica again with the arguments it had (a replica that died or was killed), fresh eBPF state for it, and wait until it is normal')
    .option('--force', 'kill it first (SIGKILL, as a crash would) when it is still running')
    .option('--wait-ms <ms>', 'how long to wait for its log to say it is normal again (default: the provider\'s start timeout)')
    .addHelpText(
      'after',
      `
A restarted replica has lost its state (the replicas keep none on disk). With
the native side's recovery (VR Revisited 4.3) it starts RECOVERING: it asks
every other replica, installs the state of the latest view's leader and turns
normal; it takes part in nothing before. \`status\` shows each replica's state:
normal in view V / view change to V / recovering (with why) / dead.

Its command line is the one \`start\` recorded in its pid file; its committed-log
dump (--dump-log) goes to a new file per incarnation (<file>.1, <file>.2, ...),
so no restart truncates what an earlier life committed. With fast paths
attached, that node's eBPF programs and maps are detached and attached afresh.

Examples:
  $ electrode-lab start --all
  $ electrode-lab exec replica1 -- kill -9 <pid>   (pid from electrode-lab status)
  $ electrode-lab restart replica1
  $ electrode-lab restart replica1 --force         kill and restart in one go
  $ electrode-lab status                           replica1: normal in view 0 ...`,
    )
    .action(async (name: string, o: { force?: boolean; waitMs?: string }) => {
      const { plan, paths, provider } = ctx.loadLab();
      const bad = (message: string, hint: string) => new DiagnosticsError([{ code: 'RESTART_INPUT', subject: name, message, hint }], 'input');
      const names = replicas(plan).map((n) => n.name);
      const spec = plan.nodes.find((n) => n.name === name);
      if (!spec) throw bad(`lab '${plan.lab}' has no node ${name}`, `restart one of its replicas: ${names.join(', ')}`);
      if (spec.role !== 'replica') throw bad(`${name} is a ${spec.role} node, not a replica`, `restart one of ${names.join(', ')}`);
      if (o.waitMs !== undefined && !/^\d+$/.test(o.waitMs)) throw new DiagnosticsError([{ code: 'BAD_OPTION', subject: `--wait-ms=${o.waitMs}`, message: 'expected whole milliseconds', hint: 'e.g. --wait-ms 20000' }], 'input');
      const pctx = ctx.providerContext(paths);
      const lab = openLab(provider, plan, pctx);
      const node = lab.node(spec);
      const old = loadProcessRecords(paths).find((r) => r.node === name && r.name === REPLICA_PROC);
      if (!old) throw new LabError(`no replica was started on ${name} in lab '${plan.lab}' (no pid file): run \`electrode-lab start\` first`, 'RESTART_NOT_STARTED');
      const dry = ctx.runner().dryRun;
      if (!dry && (await node.alive(old))) {
        if (!o.force) throw new LabError(`${name} is still running (pid ${old.pid}); restart starts a replica that is gone: kill it first (\`electrode-lab exec ${name} -- kill -9 ${old.pid}\`), stop the lab with \`electrode-lab stop\`, or pass --force`, 'RESTART_RUNNING');
        await ctx.progress().step(`kill ${name} (pid ${old.pid}, SIGKILL)`, async () => {
          if (lab.canFault) await node.kill(old);
          else await node.stop(old);
          if (!(await until(async () => !(await node.alive(old)), 10_000))) throw new LabError(`${name} (pid ${old.pid}) did not die`, 'RESTART_RUNNING');
        });
      }
      // fresh eBPF state for this node when the lab's fast paths are attached
      const attached = savedAttach(paths)?.find((r) => r.node === name);
      if (attached && old.argv.includes('--bpf-pin-dir')) {
        const mode: XdpMode = attached.xdp_mode === 'native' || attached.xdp_mode === 'generic' ? attached.xdp_mode : 'auto';
        await ctx.progress().step(`fresh eBPF state on ${name} (detach, attach ${attached.enabled})`, () => reattachFastPaths(openLab(provider, plan, pctx), spec.index, fastPathsOf(attached.enabled), mode, attached.hook === 'tc' ? 'tc' : 'xdp'));
      }
      const incarnation = (old.incarnation ?? 0) + 1;
      const argv = restartArgv(old.argv, incarnation);
      const at = Date.now();
      const rec = await ctx.progress().step(`restart ${name} (incarnation ${incarnation})`, () => restartOn(lab, old, argv, incarnation, new Date(at)));
      if (dry) return;
      const started = [{ node: spec, rec, binary: argv[0]! }];
      const bound = await waitBound(lab, started);
      if (bound.dead.length) throw new LabError(`${name} exited right after the restart; see ${rec.logFile}`, 'RESTART_FAILED');
      if (!bound.ok) throw new LabError(`${name} did not bind its port within ${provider.startTimeoutMs / 1000}s; see ${rec.logFile}`, 'RESTART_FAILED');
      const waitMs = o.waitMs !== undefined ? Number(o.waitMs) : provider.startTimeoutMs;
      let text = '';
      const normal = await ctx.progress().step(`wait for ${name} to be normal (recovery)`, () =>
        until(async () => {
          text = await logTail(node, rec);
          return normalAfter(text, at) !== undefined || !(await node.alive(rec));
        }, waitMs),
      );
      const status = replicaStatusFromLog(text);
      const alive = await node.alive(rec);
      ctx.out(`${name}  pid ${rec.pid}  incarnation ${incarnation}  ${describeReplicaStatus(status, alive)}  log ${rec.logFile}`);
      if (!alive) throw new LabError(`${name} exited after the restart; see ${rec.logFile}`, 'RESTART_FAILED');
      if (!normal || normalAfter(text, at) === undefined || status.state !== 'normal') throw new LabError(`${name} restarted (pid ${rec.pid}) but is not normal after ${waitMs / 1000}s: ${describeReplicaStatus(status, alive)}; it takes part in nothing until it recovers (see ${rec.logFile})`, 'RESTART_NOT_NORMAL');
    });
}
