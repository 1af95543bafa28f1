/**
 * What a trial proves, gathered after it: the client's history and ack log
 * and every replica life's committed log, judged by safety.ts; and, under
 * the forge nemesis, what the replicas counted as dropped.
 */
import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { getHeapStatistics } from 'node:v8';
import { exitStats } from '../core/logline.js';
import { RunPaths } from '../edges/paths.js';
import { PlanNode } from '../core/plan.js';
import { Started } from '../lab/replicas.js';
import { BenchLab } from './lab.js';
import { ForgeRecord, forgeDrops, recoveryMs } from './nemesis.js';
import { DumpInput, analyzeTrial } from './safety.js';
import { readTextChunks } from '../edges/files.js';
import { Text, isEmptyText, joinTexts } from '../core/text.js';
import { LoggingRunner } from './store.js';
import { TrialProcs, trialFiles } from './trialProcs.js';
import { Trial, TrialRecord } from './types.js';

export interface SafetyContext {
  run: RunPaths;
  readNodeFile(lab: BenchLab, node: PlanNode, path: string, dest?: string): Promise<string>;
  /** The run folder of a node, made if missing. */
  nodeDir(node: string): string;
}

/**
 * The trial's safety verdict: the client's history checked for
 * linearizability, its acknowledged requests against the committed logs of
 * the replicas that survived; the files go into the run folder.
 */
export async function checkSafety(ctx: SafetyContext, t: Trial, lab: BenchLab, procs: TrialProcs, clientNodes: readonly PlanNode[], rec: TrialRecord): Promise<void> {
  const files = trialFiles(lab, t.seq);
  const { started, lives, killed } = procs;
  const dumps: DumpInput[] = [];
  const crashed = new Set(rec.crashes.map((c) => c.pid));
  // the whole trial must fit: the checker's parsed form takes several times its text
  const tooLarge: string[] = [];
  let total = 0;
  const read = async (node: PlanNode, path: string): Promise<Text> => {
    const dest = join(ctx.nodeDir(node.name), basename(path));
    if (total > CHECK_BUDGET_BYTES) return '';
    let text: Text = await ctx.readNodeFile(lab, node, path, dest);
    const size = existsSync(dest) ? statSync(dest).size : 0;
    // a file larger than one string can hold (V8 strings end near 512 MB) reads as '': read it in chunks
    if (!text && size > 0) text = readTextChunks(dest);
    total += size;
    if (isEmptyText(text) !== (size === 0) || total > CHECK_BUDGET_BYTES) tooLarge.push(`${node.name}/${basename(path)} (${Math.round(size / 1e6)} MB)`);
    return text;
  };
  for (const l of lives) {
    const text = await read(l.node, l.dump);
    // every life's dump counts for agreement; only the replicas still running at the end (not killed, not crashed) for what the lab holds
    const survivor = started.some((s) => s.rec.pid === l.rec.pid) && !killed.has(l.rec.pid) && !crashed.has(l.rec.pid);
    dumps.push({ node: l.node.name, incarnation: l.incarnation, survivor, text });
  }
  // several clients: their histories and ack logs are one history and one ack log (client ids differ)
  const history = joinTexts(await Promise.all(clientNodes.map((c) => read(c, files.history(c)))));
  const acks = joinTexts(await Promise.all(clientNodes.map((c) => read(c, files.acks(c)))));
  if (tooLarge.length) {
    rec.safety = { ...analyzeTrial({ dumps: [] }), notChecked: [tooLargeReason(tooLarge)] };
    return;
  }
  // the client never ran (a failed start): nothing to judge, and the report says "not checked"
  if (isEmptyText(history) && isEmptyText(acks)) return;
  rec.safety = analyzeTrial({ ...(!isEmptyText(history) ? { history } : {}), ...(!isEmptyText(acks) ? { acks } : {}), dumps });
  if (rec.fault?.injectedAt) {
    const replicaLogs = started.map((s) => (existsSync(join(ctx.nodeDir(s.node.name), basename(s.rec.logFile))) ? readFileSync(join(ctx.nodeDir(s.node.name), basename(s.rec.logFile)), 'utf8') : ''));
    const ms = recoveryMs(replicaLogs, rec.fault.injectedAt);
    if (ms !== undefined) rec.fault.recoveryMs = ms;
  }
  rmSync(join(ctx.run.root, '.scratch'), { recursive: true, force: true });
}

/** forge: what the replicas' exit lines counted as dropped (their logs are on this host by now). */
export function countForgeDrops(runner: LoggingRunner, forge: ForgeRecord, started: Started[]): void {
  const stats: Record<string, Record<string, number> | undefined> = {};
  for (const s of started) stats[s.node.name] = existsSync(s.rec.logFile) ? exitStats(readFileSync(s.rec.logFile, 'utf8')) : undefined;
  Object.assign(forge, forgeDrops(stats));
  runner.note(`nemesis forge: the replicas dropped ${forge.dropped} (${Object.entries(forge.droppedBy ?? {}).map(([k, v]) => `${k} ${v}`).join(', ')})${forge.uncounted ? `; no exit counters from ${forge.uncounted.join(', ')}` : ''}`);
}

/**
 * What one trial's history, ack log and committed logs may weigh together
 * for the checker, in bytes: a sixth of node's heap limit, since the parsed
 * form takes about five times the text (a 1.1 GB trial ran a 4 GB heap out).
 */
export const CHECK_BUDGET_BYTES = Math.floor(getHeapStatistics().heap_size_limit / 6);

/** Why a trial whose files outgrew the checker is "not checked" (pure, for the report and its test). */
export function tooLargeReason(files: string[]): string {
  return `too large for the checker, which holds a whole trial in memory (here at most ${Math.round(CHECK_BUDGET_BYTES / 1e6)} MB of history, acks and committed logs, a sixth of node's heap): ${files.join(', ')}; nothing was judged. Give node more heap (NODE_OPTIONS=--max-old-space-size=12288 for a 10-minute soak at --threads 1), shorten --duration or lower --threads`;
}
