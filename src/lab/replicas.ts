/**
 * Starting, waiting for and stopping a lab's processes: the ONE way `start`,
 * `stop`, the bench and the course labs do it. Conditions with deadlines,
 * never sleeps: a process counts as started when it is alive and its UDP
 * port is bound; a lab as ready when one request commits end to end.
 */
import { probeArgv } from '../core/argv.js';
import { PlanNode } from '../core/plan.js';
import { LabNode, OpenLab } from '../providers/lab.js';
import { until } from '../edges/proc.js';
import { restartLine } from '../core/replicaStatus.js';
import { RunResult } from '../edges/runner.js';
import { saveProcessRecord, type ProcessRecord } from '../edges/state.js';

export interface Started {
  node: PlanNode;
  rec: ProcessRecord;
  /** What runs (a replica, the floor's echo, upstream's replica), for gdb on its core. */
  binary: string;
}

/** Starts one process per node: `argvFor` builds each command line (src/core/argv.ts). */
export async function startOn(lab: OpenLab, nodes: LabNode[], name: string, binary: string, argvFor: (node: PlanNode) => string[]): Promise<Started[]> {
  const out: Started[] = [];
  for (const n of nodes) out.push({ node: n.spec, binary, rec: await n.spawn(name, argvFor(n.spec)) });
  return out;
}

export interface BoundResult {
  ok: boolean;
  /** Processes that exited while we waited. */
  dead: Started[];
  /** Alive, but their port was not bound in time. */
  pending: Started[];
}

/** Waits until every process has bound its node's UDP port, or one of them died, or the deadline. */
export async function waitBound(lab: OpenLab, started: Started[], timeoutMs = lab.startTimeoutMs, port = (s: Started) => s.node.port): Promise<BoundResult> {
  const pending = new Set(started);
  let dead: Started[] = [];
  const ok = await until(async () => {
    dead = [];
    for (const s of started) if (!(await lab.node(s.node).alive(s.rec))) dead.push(s);
    if (dead.length) return true;
    for (const s of [...pending]) if (await lab.node(s.node).udpBound(port(s), s.rec)) pending.delete(s);
    return pending.size === 0;
  }, timeoutMs);
  return { ok: ok && !dead.length && pending.size === 0, dead, pending: [...pending] };
}

/** The processes that are not alive now. */
export async function deadOnes(lab: OpenLab, started: Started[]): Promise<Started[]> {
  const out: Started[] = [];
  for (const s of started) if (!(await lab.node(s.node).alive(s.rec))) out.push(s);
  return out;
}

export interface CommitResult {
  ok: boolean;
  last?: RunResult;
  /** Replicas that died before a request committed. */
  dead: Started[];
}

/**
 * Sends one request at a time from `client` until one commits (each with its
 * own client id above `idBase` and keys of its own, so it never shows up in a
 * measured client's history), a replica dies, or the deadline passes.
 */
export async function waitFirstCommit(lab: OpenLab, started: Started[], client: LabNode, clientBinary: string, idBase: number, timeoutMs = lab.startTimeoutMs, attemptMs = 3000): Promise<CommitResult> {
  const deadline = Date.now() + timeoutMs;
  let last: RunResult | undefined;
  for (let attempt = 0; Date.now() < deadline; attempt++) {
    last = await client.exec(probeArgv(clientBinary, lab.paths.replicaConfigFile, idBase + attempt), { check: false, timeoutMs: attemptMs + (timeoutMs > 20_000 ? 30_000 : 0) });
    if (last.exitCode === 0) return { ok: true, last, dead: [] };
    const dead = await deadOnes(lab, started);
    if (dead.length) return { ok: false, last, dead };
  }
  return { ok: false, ...(last ? { last } : {}), dead: await deadOnes(lab, started) };
}

/** Stops each process (SIGTERM, then SIGKILL after the provider's grace period) and forgets its pid file. */
export async function stopAll(lab: OpenLab, recs: ProcessRecord[]): Promise<void> {
  for (const rec of recs) await lab.nodeOf(rec).stop(rec);
}

/**
 * Starts a process that is gone again on its node, as incarnation K (`argv`
 * from restartArgv: the recorded flags with a dump file of its own). The log
 * gets a restart line first, so the old life's lines stop counting
 * (replicaStatusFromLog); the pid file records the incarnation.
 */
export async function restartOn(lab: OpenLab, old: ProcessRecord, argv: string[], incarnation: number, at: Date = new Date()): Promise<ProcessRecord> {
  const node = lab.nodeOf(old);
  await node.exec(['sh', '-c', 'mkdir -p "$(dirname "$2")" && printf \'%s\\n\' "$1" >> "$2"', 'sh', restartLine(at, node.name, incarnation), old.logFile]);
  const rec: ProcessRecord = { ...(await node.spawn(old.name, argv)), incarnation };
  if (!lab.ctx.runner.dryRun) saveProcessRecord(lab.paths, rec);
  return rec;
}

/** The tail of a process's log that holds its status, read on its node ('' when there is none yet). */
export async function logTail(node: LabNode, rec: ProcessRecord, bytes = 262_144): Promise<string> {
  const r = await node.exec(['tail', '-c', String(bytes), rec.logFile], { check: false, timeoutMs: 15_000 }).catch(() => undefined);
  return r && r.exitCode === 0 ? r.stdout : '';
}
