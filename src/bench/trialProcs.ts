/**
 * One trial's replicas as the parts of the bench see them (run.ts starts
 * them, nemesisRun.ts kills and restarts them, the safety check reads every
 * life's dump), and where the trial's files are.
 */
import { join } from 'node:path';
import { incarnationDumpLog } from '../core/argv.js';
import { PlanNode } from '../core/plan.js';
import { ProcessRecord } from '../providers/provider.js';
import { Started } from '../lab/replicas.js';
import { BenchLab } from './lab.js';

/** One life of a replica in a trial: each restart is a new process with its own dump file. */
export interface Life {
  node: PlanNode;
  incarnation: number;
  rec: ProcessRecord;
  dump: string;
}

/** The replicas of a trial as they are now (one Started per node, replaced on restart), every life they had, and how to start one again. */
export interface TrialProcs {
  started: Started[];
  lives: Life[];
  killed: Set<number>;
  restart(s: Started): Promise<Started>;
}

/** Where a trial's replicas and clients write what the checker reads: the lab's log folder, the same path on every provider. */
export function trialFiles(lab: BenchLab, seq: number) {
  return {
    dump: (n: PlanNode, incarnation = 0) => incarnationDumpLog(join(lab.paths.nodeLogDir(n.name), `committed.t${seq}.log`), incarnation),
    history: (client: PlanNode) => join(lab.paths.nodeLogDir(client.name), `history.t${seq}.jsonl`),
    acks: (client: PlanNode) => join(lab.paths.nodeLogDir(client.name), `acks.t${seq}.log`),
  };
}


/** A wait that a deadline or an event cuts short (with Promise.race), never a synchronisation by itself. */
export const delay = (ms: number) => new Promise<void>((ok) => setTimeout(ok, Math.max(0, ms)));
