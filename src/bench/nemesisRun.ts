/**
 * The bench's nemesis, the edge that acts: one fault per trial (injected a
 * third into the measured part, healed at two thirds) or a seeded schedule
 * of faults, as operations on the lab's nodes (kill, pause, isolate, impair).
 * The pure half (parsing, windows, schedules, tallies) is nemesis.ts and
 * nemesisSchedule.ts; the trial that calls this is run.ts.
 */
import { forgeArgv } from '../core/argv.js';
import { PlanNode } from '../core/plan.js';
import { until } from '../edges/proc.js';
import { describeReplicaStatus, normalAfter, replicaStatusFromLog } from '../core/replicaStatus.js';
import { Started, logTail } from '../lab/replicas.js';
import { RunResult } from '../edges/runner.js';
import type { NativeBinaries } from '../edges/build.js';
import { BenchLab } from './lab.js';
import { ActionRecord, DEFAULT_FORGE_RATE, FORGE_LIES, NemesisRecord, NemesisSpec, highestView, leaderFromLogs, nemesisWindow, parseForgeOutput } from './nemesis.js';
import { DEFAULT_RESTART_DELAY_MS, ScheduleKind, ScheduledFault, describeScheduled, killRestartSchedule, randomSchedule } from './nemesisSchedule.js';
import { LoggingRunner } from './store.js';
import { TrialProcs, delay } from './trialProcs.js';
import { Trial } from './types.js';

/** How long a restarted replica may take to say `view V normal` before the trial reports it stuck recovering. */
export const RECOVERY_TIMEOUT_MS = 10_000;
/** A scheduled fault that would make more than f replicas faulty waits this long for one to recover, then is skipped. */
const F_LIMIT_WAIT_MS = 5_000;

/** What the nemesis needs from the bench run. */
export interface NemesisContext {
  opts: { warmup: number; duration?: number; restartDelayMs?: number };
  runner: LoggingRunner;
  bins: NativeBinaries;
  /** A node's file as text ('' when it has none). */
  readNodeFile(lab: BenchLab, node: PlanNode, path: string): Promise<string>;
}

/** The trial's fault: its record, the pids the nemesis killed, and what heals what is still in place. */
export interface FaultState {
  rec?: NemesisRecord;
  killed: Set<number>;
  heal?: () => Promise<void>;
}

/**
 * Injects the trial's fault a third into the measured part and heals it at
 * two thirds (nemesisWindow), while the client runs. Targets come from the
 * replicas' own logs (the leader is the one of the highest normal view).
 */
export async function runNemesis(ctx: NemesisContext, spec: NemesisSpec, t: Trial, lab: BenchLab, procs: TrialProcs, clientNode: PlanNode, clientRun: Promise<RunResult>, fault: FaultState): Promise<void> {
  const rec: NemesisRecord = { name: spec.name, kind: spec.kind, targets: [] };
  fault.rec = rec;
  if (!lab.canFault) {
    rec.problem = `the ${lab.providerName} provider cannot inject faults`;
    return;
  }
  const started = procs.started;
  const w = nemesisWindow(ctx.opts.warmup, ctx.opts.duration);
  const t0 = Date.now();
  let clientDone = false;
  void clientRun.finally(() => (clientDone = true));
  const waitUntil = async (ms: number) => {
    await Promise.race([delay(t0 + ms - Date.now()), clientRun]);
    return !clientDone;
  };
  if (spec.kind === 'kill-restart' || spec.kind === 'random') {
    const restartDelay = ctx.opts.restartDelayMs ?? DEFAULT_RESTART_DELAY_MS;
    if (spec.kind === 'kill-restart') rec.schedule = killRestartSchedule(spec.target ?? 'leader', w.startMs, restartDelay);
    else {
      // each repeat its own schedule, replayable from the run's seed
      rec.seed = (spec.seed ?? 0) + t.repeat;
      const measuredMs = (ctx.opts.duration ?? 3) * 1000;
      const kinds: ScheduleKind[] = ['kill', 'kill-restart', 'pause', 'partition', 'loss'];
      rec.schedule = randomSchedule({ seed: rec.seed, n: lab.plan.cluster.n, fromMs: ctx.opts.warmup * 1000 + 500, untilMs: ctx.opts.warmup * 1000 + measuredMs - 1500, restartDelayMs: restartDelay, kinds });
    }
    ctx.runner.note(`nemesis ${spec.name}: schedule ${rec.schedule.map((a) => describeScheduled(a)).join('; ') || '(empty)'}`);
    await runSchedule(ctx, rec.schedule, lab, procs, clientRun, rec, fault, t0, () => clientDone);
    return;
  }
  if (!(await waitUntil(w.startMs))) {
    rec.problem = 'the client finished before the fault was due';
    return;
  }
  const n = lab.plan.cluster.n;
  const logs = await Promise.all(started.map((s) => ctx.readNodeFile(lab, s.node, s.rec.logFile)));
  const leader = leaderFromLogs(logs, n);
  const byIndex = (i: number) => started.find((s) => s.node.index === i)!;
  const followers = started.filter((s) => s.node.index !== leader);
  const pick = (target: 'leader' | 'follower' | undefined) => (target === 'follower' ? followers[0]! : byIndex(leader));
  const { plan } = lab;
  const on = (s: Started) => lab.node(s.node);
  const note = (line: string) => ctx.runner.note(`nemesis ${spec.name}: ${line}`);
  rec.injectedAt = Date.now();
  switch (spec.kind) {
    case 'kill-leader':
    case 'kill-follower': {
      const victims = spec.kind === 'kill-leader' ? [byIndex(leader)] : followers.slice(0, spec.count ?? 1);
      for (const v of victims) {
        note(`SIGKILL ${v.node.name} (pid ${v.rec.pid})`);
        fault.killed.add(v.rec.pid);
        await on(v).kill(v.rec);
        rec.targets.push(v.node.name);
      }
      break;
    }
    case 'pause': {
      const v = pick(spec.target);
      note(`SIGSTOP ${v.node.name}`);
      await on(v).pause(v.rec);
      rec.targets.push(v.node.name);
      fault.heal = async () => {
        note(`SIGCONT ${v.node.name}`);
        await on(v).resume(v.rec);
      };
      break;
    }
    case 'partition': {
      const v = pick(spec.target);
      note(`cut ${v.node.name} off the lab network`);
      await on(v).isolate();
      rec.targets.push(v.node.name);
      fault.heal = async () => {
        note(`reconnect ${v.node.name}`);
        await on(v).heal();
      };
      break;
    }
    case 'split': {
      if (!lab.canSplit) {
        rec.problem = `the ${lab.providerName} provider cannot split the lab network`;
        return;
      }
      // the old leader with f-1 followers on one side, a quorum and the client on the other
      const f = lab.plan.cluster.f;
      const minority = [byIndex(leader).node, ...followers.slice(0, f - 1).map((x) => x.node)];
      const majority = plan.nodes.filter((x) => !minority.includes(x));
      note(`split into [${majority.map((x) => x.name).join(' ')}] and [${minority.map((x) => x.name).join(' ')}]`);
      await lab.split([majority.map((x) => lab.node(x)), minority.map((x) => lab.node(x))]);
      rec.targets.push(...minority.map((x) => x.name));
      fault.heal = async () => {
        note('heal the split');
        await lab.split(undefined);
      };
      break;
    }
    case 'loss':
    case 'dup':
    case 'reorder': {
      const p = spec.percent!;
      const netem = spec.kind === 'loss' ? { lossPercent: p } : spec.kind === 'dup' ? { duplicatePercent: p } : { reorderPercent: p };
      note(`netem ${spec.kind} ${p}% on every lab link`);
      for (const x of lab.nodes()) await x.impair(netem);
      rec.targets.push(...plan.nodes.map((x) => x.name));
      fault.heal = async () => {
        note('remove netem');
        for (const x of lab.nodes()) await x.impair(undefined);
      };
      break;
    }
    case 'forge': {
      // lies made for the view the lab is in now (its leader is view mod n)
      const view = highestView(logs);
      const rate = spec.rate ?? DEFAULT_FORGE_RATE;
      const seconds = Math.max(0.1, (w.endMs - w.startMs) / 1000);
      note(`forged replica messages from ${clientNode.name} at every replica for ${seconds} s, ${rate}/s (view ${view}, leader replica${view % n})`);
      const argv = forgeArgv(ctx.bins.forge, { config: lab.paths.replicaConfigFile, view, seconds, rate, seed: t.seq + 1 });
      const sending = lab.node(clientNode).exec(argv, { check: false, timeoutMs: seconds * 1000 + 30_000 });
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
async function runSchedule(ctx: NemesisContext, schedule: ScheduledFault[], lab: BenchLab, procs: TrialProcs, clientRun: Promise<RunResult>, rec: NemesisRecord, fault: { heal?: () => Promise<void> }, t0: number, clientDone: () => boolean): Promise<void> {
  const { plan } = lab;
  const f = plan.cluster.f;
  const on = (s: Started) => lab.node(s.node);
  const note = (line: string) => ctx.runner.note(`nemesis ${rec.name}: ${line}`);
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
      const logs = typeof a.target === 'number' ? [] : await Promise.all(procs.started.map((x) => logTail(lab.node(x.node), x.rec)));
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
        await on(v).kill(v.rec);
        await until(async () => !(await on(v).alive(v.rec)), 5_000, 20);
        // a restart supervisor's delay, or the replica's time down; the restart happens even when the client has finished, so every replica runs at the end
        await waitUntil(a.endMs);
        note(`restart ${v.node.name}`);
        // the restart line goes into its log after this: only a normal line written since counts
        const restartAt = Date.now();
        const again = await procs.restart(v);
        act.endedAt = restartAt;
        rec.healedAt = act.endedAt;
        note(`${v.node.name} restarted as pid ${again.rec.pid}`);
        const node = lab.node(again.node);
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
        await on(v).pause(v.rec);
        const heal = async () => {
          note(`SIGCONT ${v.node.name}`);
          await on(v).resume(v.rec);
        };
        outstanding.set(a.seq, heal);
        await waitUntil(a.endMs);
        break;
      }
      case 'partition': {
        const v = victim!;
        note(`cut ${v.node.name} off the lab network`);
        await on(v).isolate();
        outstanding.set(a.seq, async () => {
          note(`reconnect ${v.node.name}`);
          await on(v).heal();
        });
        await waitUntil(a.endMs);
        break;
      }
      case 'loss': {
        note(`netem loss ${a.percent}% on every lab link`);
        for (const x of lab.nodes()) await x.impair({ lossPercent: a.percent! });
        outstanding.set(a.seq, async () => {
          note('remove netem');
          for (const x of lab.nodes()) await x.impair(undefined);
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